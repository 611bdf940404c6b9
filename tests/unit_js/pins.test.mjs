// Pinned messages (web/static/js/pins.js): the `m.room.pinned_events` list every Matrix client
// shares, read defensively and changed without losing what another client put there.

import assert from "node:assert/strict";
import { test } from "node:test";

import { PINNED_EVENTS, newestFirst, pinnedIds, withPin, withoutPin } from "../../web/static/js/pins.js";

test("the state type is Matrix's own", () => {
  assert.equal(PINNED_EVENTS, "m.room.pinned_events");
});

test("ids are read in order, once each, and only ids", () => {
  assert.deepEqual(pinnedIds({ pinned: ["$a", "$b", "$a", 5, null, "not-an-id", "$c"] }), ["$a", "$b", "$c"]);
  assert.deepEqual(pinnedIds(null), []);
  assert.deepEqual(pinnedIds({ pinned: "$a" }), []);
});

test("a pin goes last (the newest) and the panel shows the newest first", () => {
  let content = null;
  content = withPin(content, "$one");
  content = withPin(content, "$two");
  assert.deepEqual(content.pinned, ["$one", "$two"]);
  assert.deepEqual(newestFirst(content), ["$two", "$one"]);
  // Pinning again moves it to the newest place rather than listing it twice.
  assert.deepEqual(withPin(content, "$one").pinned, ["$two", "$one"]);
});

test("unpinning removes one id and keeps what other clients added", () => {
  const content = { pinned: ["$one", "$two"], "org.example.note": "kept" };
  const after = withoutPin(content, "$one");
  assert.deepEqual(after, { pinned: ["$two"], "org.example.note": "kept" });
  assert.deepEqual(withoutPin(after, "$missing").pinned, ["$two"]);
  // The input is not changed in place (it is the synced state).
  assert.deepEqual(content.pinned, ["$one", "$two"]);
});
