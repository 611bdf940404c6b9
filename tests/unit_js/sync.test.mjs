// The sync engine's catch-up (web/static/js/sync.js): a `limited` timeline is filled back from
// its prev_batch to the last event already held, so nothing sent while a tab was away (asleep,
// offline) is missing; every event is kept once however often it arrives; a gap too long to
// stitch starts the timeline afresh; the gap's older state never overwrites newer state.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConnectionError } from "../../web/static/js/matrix.js";
import { SyncEngine } from "../../web/static/js/sync.js";

const ROOM = "!chan:hs.test";

function message(n) {
  return { event_id: `$e${n}`, type: "m.room.message", sender: "@a:hs.test", origin_server_ts: n, content: { msgtype: "m.text", body: `message ${n}` } };
}
function named(n, name) {
  return { event_id: `$e${n}`, type: "m.room.name", state_key: "", sender: "@a:hs.test", origin_server_ts: n, content: { name } };
}
function batch(events, { limited = false, prevBatch = null, state = [] } = {}, next = "s") {
  const timeline = { events, limited, prev_batch: prevBatch };
  return { next_batch: next, rooms: { join: { [ROOM]: { state: { events: state }, timeline } } } };
}
const ids = (engine) => engine.room(ROOM).timeline.map((e) => e.event_id);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A client whose /messages pages back through `history` (oldest first), `size` per page. */
function client(history, { size = 3, failFirst = 0 } = {}) {
  const asked = [];
  let failures = failFirst;
  return {
    asked,
    async messages(roomId, { from, dir }) {
      assert.equal(roomId, ROOM);
      assert.equal(dir, "b");
      asked.push(from);
      if (failures-- > 0) throw new ConnectionError("offline");
      // A token names how many of the newest events were already paged over: `t<k>`.
      const skip = Number(from.slice(1));
      const upTo = history.length - skip;
      const chunk = history.slice(Math.max(0, upTo - size), upTo).reverse();
      return { chunk, end: upTo - size > 0 ? `t${skip + size}` : undefined, state: [] };
    },
  };
}

test("a limited sync is filled back to the last event held: every message, in order, once", async () => {
  const history = range(1, 12).map(message);
  const fake = client(history.slice(0, 10)); // what the server has before the limited batch's own
  const engine = new SyncEngine(fake, "@me:hs.test");
  await engine._process(batch(history.slice(0, 2), { prevBatch: "t-start" }));
  assert.deepEqual(ids(engine), ["$e1", "$e2"]);
  // Away: 3…12 were sent; the sync brings only the newest two, limited.
  await engine._process(batch(history.slice(10), { limited: true, prevBatch: "t0" }));
  assert.deepEqual(ids(engine), range(1, 12).map((n) => `$e${n}`));
  assert.deepEqual(fake.asked, ["t0", "t3", "t6"], "paged back until $e2, no further");
});

test("the same batch processed twice (a retried sync) changes nothing", async () => {
  const history = range(1, 6).map(message);
  const engine = new SyncEngine(client(history.slice(0, 4)), "@me:hs.test");
  await engine._process(batch(history.slice(0, 1)));
  const limited = batch(history.slice(4), { limited: true, prevBatch: "t0" });
  await engine._process(limited);
  await engine._process(limited);
  assert.deepEqual(ids(engine), range(1, 6).map((n) => `$e${n}`));
});

test("a gap fill that fails is retried with the same batch by the loop, and nothing doubles", async () => {
  const history = range(1, 8).map(message);
  const fake = client(history.slice(0, 6), { failFirst: 1 });
  // As a homeserver does: the same `since` answers the same batch.
  const batches = new Map([[null, batch(history.slice(0, 2), {}, "s1")], ["s1", batch(history.slice(6), { limited: true, prevBatch: "t0" }, "s2")]]);
  fake.sync = async ({ since }) => batches.get(since) ?? new Promise(() => {});
  const engine = new SyncEngine(fake, "@me:hs.test");
  const statuses = [];
  engine.addEventListener("status", (e) => statuses.push(/** @type {CustomEvent} */ (e).detail));
  engine.start();
  for (let i = 0; i < 100 && engine.since !== "s2"; i++) await new Promise((r) => setTimeout(r, 20));
  engine.stop();
  assert.equal(engine.since, "s2");
  assert.ok(statuses.includes("reconnecting"), "the failed fill was seen as a failed batch");
  assert.deepEqual(ids(engine), range(1, 8).map((n) => `$e${n}`));
});

test("a gap too long to stitch starts the timeline afresh, and scrolling up pages from there", async () => {
  const history = range(1, 400).map(message);
  const fake = client(history.slice(0, 398), { size: 40 });
  const engine = new SyncEngine(fake, "@me:hs.test");
  await engine._process(batch(history.slice(0, 1)));
  await engine._process(batch(history.slice(398), { limited: true, prevBatch: "t0" }));
  const room = engine.room(ROOM);
  assert.equal(fake.asked.length, 6, "gave up after its pages");
  assert.ok(!room.ids.has("$e1"), "the old timeline is dropped, not stitched with a hole");
  assert.deepEqual(ids(engine).slice(-2), ["$e399", "$e400"]);
  const shown = ids(engine).map((id) => Number(id.slice(2)));
  assert.deepEqual(shown, range(shown[0], 400), "what is shown has no hole");
  assert.equal(room.prevBatch, "t240", "scrolling up continues where the fill stopped");
  assert.equal(room.atStart, false);
});

test("state in the gap is older than the batch's state block: the newer name stays", async () => {
  const history = [message(1), named(2, "old name"), message(3), message(4)];
  const engine = new SyncEngine(client(history.slice(0, 3)), "@me:hs.test");
  await engine._process(batch(history.slice(0, 1)));
  await engine._process(batch(history.slice(3), { limited: true, prevBatch: "t0", state: [named(99, "new name")] }));
  assert.equal(engine.room(ROOM).getState("m.room.name").content.name, "new name");
  assert.deepEqual(ids(engine), ["$e1", "$e2", "$e3", "$e4"]);
});

test("after a failed sync the next one is not held by the server, so 'reconnecting' ends once it answers", async () => {
  // Down once, then back with nothing new to say: a long poll would keep the banner up for 30 s.
  const asked = [];
  let down = true;
  const fake = {
    async sync({ since, timeoutMs }) {
      asked.push({ since, timeoutMs });
      if (since === null) return batch([message(1)], {}, "s1");
      if (down) {
        down = false;
        throw new ConnectionError("offline");
      }
      // Back, with nothing new: a long poll is held (here, for ever); an unheld sync answers.
      return timeoutMs > 0 ? new Promise(() => {}) : batch([], {}, "s1");
    },
  };
  const engine = new SyncEngine(fake, "@me:hs.test");
  const statuses = [];
  engine.addEventListener("status", (e) => statuses.push(/** @type {CustomEvent} */ (e).detail));
  engine.start();
  for (let i = 0; i < 200 && asked.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  engine.stop();
  assert.deepEqual(statuses, ["online", "reconnecting", "online"]);
  assert.deepEqual(
    asked.slice(0, 4).map((a) => a.timeoutMs),
    [0, 30_000, 0, 30_000],
    "the first sync, a long poll that failed, an unheld one after it, and long polls again",
  );
});
