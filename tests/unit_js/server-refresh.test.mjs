// Keeping the server list current (web/static/js/views/server-refresh.js) when answers and sync
// batches cross: a list read before a join that arrives after one read after it does not hide
// the server, and a server listed before this client's sync has its space is not taken for one
// it left.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ShellStore } from "../../web/static/js/store.js";
import { createServerRefresh } from "../../web/static/js/views/server-refresh.js";

const server = (sid) => ({ server_id: sid, name: sid, channels: [{ channel_id: `${sid}-general`, name: "general" }] });

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

function setUp({ listAnswers, syncRooms = [] }) {
  const store = new ShellStore();
  const api = {
    // Answers in turn; then an empty list (a refresh the test does not look at).
    listServers: () => listAnswers.shift() ?? Promise.resolve([]),
    getServer: async (sid) => server(sid),
  };
  const sync = { rooms: new Map(syncRooms.map((id) => [id, {}])), status: "online", room: () => null };
  const address = { afterLoad: () => false };
  const refresher = createServerRefresh({ api, sync, store, address, showBanner: () => {}, onSignedOut: () => {} });
  return { store, sync, refresher };
}

test("a list read before a join, answered after the one read after it, does not hide the server", async () => {
  const before = deferred();
  const after = deferred();
  const { store, refresher } = setUp({ listAnswers: [before.promise, after.promise] });
  const first = refresher.refreshServers(); // started by a sync batch, before the join
  const second = refresher.refreshServers(); // after the join
  after.resolve([{ server_id: "!old" }, { server_id: "!joined" }]);
  await second;
  before.resolve([{ server_id: "!old" }]);
  await first;
  assert.deepEqual(store.state.order, ["!old", "!joined"]);
});

test("a server listed before the sync has its space stays; once seen there and gone, it goes", async () => {
  const { store, sync, refresher } = setUp({ listAnswers: [Promise.resolve([{ server_id: "!s" }])] });
  await refresher.refreshServers();
  store.selectServer("!s");
  // A membership change in another room, in a batch the homeserver made before the join.
  refresher.onSync({ state: new Map(), membership: true });
  assert.ok(store.state.servers.has("!s"), "not taken for a server left");
  assert.equal(store.state.activeServer, "!s");
  // The join arrives, then a kick: gone at once.
  sync.rooms.set("!s", {});
  refresher.onSync({ state: new Map(), membership: true });
  sync.rooms.delete("!s");
  refresher.onSync({ state: new Map(), membership: true });
  assert.ok(!store.state.servers.has("!s"));
  assert.equal(store.state.activeServer, null);
});
