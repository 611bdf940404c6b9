// Joining a channel without racing Guilds' own join (web/static/js/views/channel-join.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { AUTO_JOIN_KEY, autoJoinPending, awaitAutoJoin } from "../../web/static/js/views/channel-join.js";

const ME = "@me:guilds.test";
const ROOM = "!lounge:guilds.test";

class FakeSync extends EventTarget {
  constructor() {
    super();
    this.rooms = new Map();
    this.invites = new Map();
  }
  room(id) {
    return this.rooms.get(id) ?? null;
  }
  /** What a sync batch does when the module has joined the user. */
  joined(id) {
    this.invites.delete(id);
    this.rooms.set(id, { roomId: id });
    this.dispatchEvent(new Event("update"));
  }
}

function invite(extra = {}) {
  return { type: "m.room.member", state_key: ME, content: { membership: "invite", ...extra } };
}

test("only the bot's auto-join invite to this user counts as Guilds joining them", () => {
  const sync = new FakeSync();
  assert.equal(autoJoinPending(sync, ROOM, ME), false);
  sync.invites.set(ROOM, [invite()]);
  assert.equal(autoJoinPending(sync, ROOM, ME), false);
  sync.invites.set(ROOM, [invite({ [AUTO_JOIN_KEY]: true })]);
  assert.equal(autoJoinPending(sync, ROOM, ME), true);
  assert.equal(autoJoinPending(sync, ROOM, "@other:guilds.test"), false);
});

test("with Guilds' invite pending, the client waits for that join instead of joining", async () => {
  const sync = new FakeSync();
  sync.invites.set(ROOM, [invite({ [AUTO_JOIN_KEY]: true })]);
  const waiting = awaitAutoJoin(sync, ROOM, ME, 5_000);
  setTimeout(() => sync.joined(ROOM), 10);
  assert.equal(await waiting, true);
});

test("without an invite, or when Guilds' join never comes, the client joins itself", async () => {
  const sync = new FakeSync();
  assert.equal(await awaitAutoJoin(sync, ROOM, ME), false);
  sync.invites.set(ROOM, [invite({ [AUTO_JOIN_KEY]: true })]);
  assert.equal(await awaitAutoJoin(sync, ROOM, ME, 20), false);
});
