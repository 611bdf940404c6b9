// The shell's store (web/static/js/store.js): subscriptions, batches, and the shell's changes.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  SELECTION_KEYS,
  ShellStore,
  Store,
  hasPermission,
  memberName,
  openPlace,
  pickChannel,
  roleColor,
  serverOfRoom,
} from "../../web/static/js/store.js";

const GENERAL = { channel_id: "!general", name: "general", kind: "text" };
const VOICE = { channel_id: "!voice", name: "Lounge", kind: "voice" };
const RANDOM = { channel_id: "!random", name: "random", kind: "text" };

function server(sid, { channels = [GENERAL, RANDOM], defaultChannel = "!general", ...rest } = {}) {
  return { server_id: sid, name: sid, channels, default_channel_id: defaultChannel, categories: [], roles: [], ...rest };
}

/** Every notification a store makes, as the sorted keys it named. */
function record(store, keys) {
  const seen = [];
  store.subscribe((changed) => seen.push([...changed].sort()), keys);
  return seen;
}

test("a subscriber is told of the keys it watches, every time they are set", () => {
  const store = new Store({ a: 1, b: 2 });
  const all = record(store);
  const onlyA = record(store, ["a"]);
  store.update({ a: 1 }); // the same value: told anyway (opening what is open draws it again)
  store.update({ b: 3 });
  assert.deepEqual(all, [["a"], ["b"]]);
  assert.deepEqual(onlyA, [["a"]]);
  assert.equal(store.state.b, 3);
});

test("subscribers are told in the order they subscribed, and no more once unsubscribed", () => {
  const store = new Store({ a: 0 });
  const order = [];
  const stop = store.subscribe(() => order.push("first"));
  store.subscribe(() => order.push("second"));
  store.update({ a: 1 });
  stop();
  store.update({ a: 2 });
  assert.deepEqual(order, ["first", "second", "second"]);
});

test("a batch tells each subscriber once, at its end, of everything it changed", () => {
  const store = new Store({ a: 0, b: 0 });
  const seen = record(store);
  const result = store.batch(() => {
    store.update({ a: 1 });
    store.batch(() => store.update({ b: 1 })); // nested: still one notification
    assert.deepEqual(seen, []);
    return "done";
  });
  assert.equal(result, "done");
  assert.deepEqual(seen, [["a", "b"]]);
  store.batch(() => {}); // nothing changed: nobody told
  assert.equal(seen.length, 1);
});

test("a batch that throws still tells what it changed before", () => {
  const store = new Store({ a: 0 });
  const seen = record(store);
  assert.throws(() =>
    store.batch(() => {
      store.update({ a: 1 });
      throw new Error("boom");
    }),
  );
  assert.deepEqual(seen, [["a"]]);
  store.update({ a: 2 }); // not stuck in the batch
  assert.equal(seen.length, 2);
});

test("a server opens at the channel last open there, else its default, else a text channel", () => {
  const store = new ShellStore();
  store.setServers([server("!s"), server("!t", { channels: [VOICE, RANDOM], defaultChannel: "!gone" })]);
  store.selectServer("!s");
  assert.equal(store.state.activeChannel, "!general");
  store.selectChannel("!random");
  store.selectServer("!t");
  assert.equal(store.state.activeChannel, "!random"); // no default: the first text channel
  store.selectServer("!s");
  assert.equal(store.state.activeChannel, "!random"); // remembered
  store.forgetChannel("!s");
  assert.equal(pickChannel(store.state, store.state.servers.get("!s")), "!general");
  assert.equal(pickChannel(store.state, server("!v", { channels: [VOICE], defaultChannel: null })), "!voice");
  assert.equal(pickChannel(store.state, server("!e", { channels: [] })), null);
});

test("opening a server not listed opens Home; a message a link names is kept until a move", () => {
  const store = new ShellStore();
  store.setServers([server("!s")]);
  const seen = record(store, SELECTION_KEYS);
  store.selectServer("!nope");
  assert.equal(store.state.activeServer, null);
  assert.equal(store.state.activeChannel, null);
  store.selectServer("!s", "$event");
  assert.equal(store.state.linkedEvent, "$event");
  store.selectChannel("!general"); // the same channel, clicked: drawn again, the link let go
  assert.equal(store.state.linkedEvent, null);
  assert.equal(seen.length, 3);
  store.rememberChannel("!s", "!random"); // for later: nothing drawn now
  assert.equal(seen.length, 3);
  store.showHome();
  assert.deepEqual([store.state.activeServer, store.state.activeChannel], [null, null]);
});

test("a server list without the open server goes Home; the Map object stays the same", () => {
  const store = new ShellStore();
  const map = store.state.servers;
  store.setServers([server("!s"), server("!t")]);
  store.selectServer("!t");
  store.setServers([server("!s")]);
  assert.equal(store.state.servers, map);
  assert.deepEqual([...map.keys()], ["!s"]);
  assert.deepEqual(store.state.order, ["!s"]);
  assert.equal(store.state.activeServer, null);
  assert.equal(store.state.loaded, true);
});

test("a server loaded again keeps its channel open, or opens another when it is gone", () => {
  const store = new ShellStore();
  store.setServers([server("!s")]);
  store.selectServer("!s");
  store.selectChannel("!random");
  store.putServer(server("!s", { name: "renamed" }));
  assert.equal(store.state.activeChannel, "!random");
  assert.equal(store.activeServer().name, "renamed");
  store.putServer(server("!s", { channels: [GENERAL] }));
  assert.equal(store.state.activeChannel, "!general");
  store.putServer(server("!new"));
  assert.deepEqual(store.state.order, ["!s", "!new"]);
});

test("members loaded are told of when they are the open server's", () => {
  const store = new ShellStore();
  store.setServers([server("!s"), server("!t")]);
  store.selectServer("!s");
  const seen = record(store, ["members"]);
  store.setMembers("!t", []);
  assert.deepEqual(seen, []);
  assert.deepEqual(store.state.members.get("!t"), []);
  store.setMembers("!s", []);
  assert.deepEqual(seen, [["members"]]);
});

test("a server removed takes its members with it, and closes if it was open", () => {
  const store = new ShellStore();
  store.setServers([server("!s"), server("!t")]);
  store.setMembers("!s", [{ user_id: "@a:hs", roles: [] }]);
  store.selectServer("!s");
  store.removeServer("!t");
  assert.equal(store.state.activeServer, "!s");
  store.removeServer("!s");
  assert.deepEqual(store.state.order, []);
  assert.equal(store.state.members.has("!s"), false);
  assert.deepEqual([store.state.activeServer, store.state.activeChannel], [null, null]);
});

test("a room's server is found by its space, channels and categories", () => {
  const store = new ShellStore();
  store.setServers([server("!s", { categories: [{ category_id: "!cat" }] })]);
  assert.equal(serverOfRoom(store.state, "!s"), "!s");
  assert.equal(serverOfRoom(store.state, "!random"), "!s");
  assert.equal(serverOfRoom(store.state, "!cat"), "!s");
  assert.equal(serverOfRoom(store.state, "!dm"), null);
});

test("the open place is the server and its channel, null on Home", () => {
  const store = new ShellStore();
  store.setServers([server("!s", { channels: [] })]);
  assert.equal(openPlace(store.state), null);
  store.selectServer("!s");
  assert.deepEqual(openPlace(store.state), { server: store.activeServer(), channel: null });
});

test("a member's colour is their highest coloured role's; names fall back to the local part", () => {
  const roles = [
    { role_id: "mod", position: 50, color: "#00ff00" },
    { role_id: "admin", position: 90, color: null },
    { role_id: "vip", position: 10, color: "#ff0000" },
    { role_id: "bad", position: 99, color: "red" },
  ];
  const store = new ShellStore();
  store.setServers([server("!s", { roles })]);
  store.setMembers("!s", [
    { user_id: "@a:hs", roles: ["vip", "mod", "admin", "bad"], display_name: "Ann" },
    { user_id: "@b:hs", roles: [] },
  ]);
  assert.equal(roleColor(store.state, "!s", "@a:hs"), "#00ff00");
  assert.equal(roleColor(store.state, "!s", "@b:hs"), null);
  assert.equal(roleColor(store.state, "!s", "@nobody:hs"), null);
  assert.equal(roleColor(store.state, "!other", "@a:hs"), null);
  const [ann, bob] = store.state.members.get("!s");
  assert.equal(memberName(ann), "Ann");
  assert.equal(memberName(bob), "b");
});

test("permissions are read from the server's me.permissions", () => {
  assert.equal(hasPermission({ me: { permissions: ["manage_channels"] } }, "manage_channels"), true);
  assert.equal(hasPermission({ me: { permissions: [] } }, "manage_channels"), false);
  assert.equal(hasPermission(null, "manage_channels"), false);
});
