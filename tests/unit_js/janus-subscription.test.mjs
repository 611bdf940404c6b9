// The SFU's one subscription per call (web/static/js/calls/janus.js): which feeds are asked for,
// which m-line (mid) carries which feed, and how feeds that come and go are batched into one
// renegotiation at a time on the one subscriber handle.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JanusTransport, Subscription, feedsNamed, updateRequest } from "../../web/static/js/calls/janus.js";

/** A stream of Janus's layout (an `attached`/`updated` event's `streams`). */
function stream(mid, feed, type = "audio") {
  return feed === null ? { mid, type, active: false } : { mid, type, active: true, feed_id: feed, feed_mid: mid };
}

test("the first update asks for every wanted feed, then nothing until something changes", () => {
  const s = new Subscription();
  s.want("a");
  s.want("b");
  const update = s.nextUpdate();
  assert.deepEqual(update, { subscribe: ["a", "b"], unsubscribe: [] });
  s.done(update, [stream("0", "a"), stream("1", "a", "video"), stream("2", "b")]);
  assert.equal(s.nextUpdate(), null);
  assert.deepEqual(s.midsOf("a"), ["0", "1"]);
  assert.deepEqual(s.midsOf("b"), ["2"]);
});

test("a feed that leaves is unsubscribed by its mids, in the same update as a feed that comes", () => {
  const s = new Subscription();
  s.want("a");
  s.want("b");
  s.done(s.nextUpdate(), [stream("0", "a"), stream("1", "a", "video"), stream("2", "b")]);
  s.unwant("a");
  s.want("c");
  const update = s.nextUpdate();
  assert.deepEqual(update, { subscribe: ["c"], unsubscribe: ["0", "1"] });
  assert.deepEqual(updateRequest(update), { request: "update", subscribe: [{ feed: "c" }], unsubscribe: [{ sub_mid: "0" }, { sub_mid: "1" }] });
  // Janus gives the new feed the m-line the old one left; the layout says whose it is now.
  s.done(update, [stream("0", "c"), stream("1", null), stream("2", "b")]);
  assert.deepEqual(s.midsOf("c"), ["0"]);
  assert.deepEqual(s.midsOf("a"), []);
  assert.equal(s.nextUpdate(), null);
});

test("a feed gone while its subscribe was on its way is unsubscribed next", () => {
  const s = new Subscription();
  s.want("a");
  const update = s.nextUpdate();
  s.unwant("a"); // Janus said `unpublished` before answering
  s.done(update, [stream("0", "a")]);
  assert.deepEqual(s.nextUpdate(), { subscribe: [], unsubscribe: ["0"] });
});

test("a feed that carries nothing is forgotten without a request, and may be asked for again", () => {
  const s = new Subscription();
  s.want("a");
  s.done(s.nextUpdate(), []);
  s.unwant("a");
  assert.equal(s.nextUpdate(), null);
  s.want("a");
  assert.deepEqual(s.nextUpdate(), { subscribe: ["a"], unsubscribe: [] });
});

test("an answer without a layout keeps the last one; a new handle starts from nothing", () => {
  const s = new Subscription();
  s.want("a");
  s.done(s.nextUpdate(), [stream("0", "a")]);
  s.applyLayout(undefined);
  assert.deepEqual(s.midsOf("a"), ["0"]);
  s.reset();
  assert.deepEqual(s.midsOf("a"), []);
  assert.deepEqual(s.nextUpdate(), { subscribe: ["a"], unsubscribe: [] });
});

test("only the feeds Janus's error names are taken out of a refused update", () => {
  assert.deepEqual(feedsNamed("No such feed (b.c.d.e)", ["a.b.c.d", "b.c.d.e"]), ["b.c.d.e"]);
  assert.deepEqual(feedsNamed(undefined, ["a"]), []);
});

// A participant id the bridge could have signed: base64url(user).base64url(device).nonce.mac
function feedOf(user, device) {
  const b64 = (text) => Buffer.from(text).toString("base64url");
  return `${b64(user)}.${b64(device)}.n.m`;
}

globalThis.MediaStream ??= class {
  constructor() {
    this.tracks = [];
  }
  getTracks() {
    return this.tracks;
  }
};

/** A transport in a session, whose requests to Janus wait until the test answers them. */
function connected() {
  const call = { peers: new Map(), kind: "video", marksOf: () => null, leave: () => {}, _changed: () => {} };
  const t = new JanusTransport(call, async () => ({}));
  t.credentials = { participant_id: feedOf("@me:x", "ME"), room: "r", room_token: "rt", token: "t" };
  t.sessionId = 1;
  t.privateId = 7;
  const requests = [];
  t.attach = async () => 99;
  t.message = (handleId, body) => new Promise((resolve) => requests.push({ handleId, body, resolve }));
  t._answer = async () => {};
  return { t, call, requests };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("feeds that come while a renegotiation is under way wait, then go in one update", async () => {
  const { t, call, requests } = connected();
  const a = feedOf("@a:x", "A");
  const b = feedOf("@b:x", "B");
  const c = feedOf("@c:x", "C");
  t._subscribeAll([{ id: a }]);
  await tick();
  assert.equal(requests.length, 1);
  assert.equal(requests[0].body.request, "join");
  assert.equal(requests[0].body.ptype, "subscriber");
  assert.deepEqual(requests[0].body.streams, [{ feed: a }]);
  assert.equal(requests[0].body.autoupdate, false);
  // Two more publish before Janus answered the join: no second request yet.
  t._subscribeAll([{ id: b }]);
  t._subscribeAll([{ id: c }]);
  await tick();
  assert.equal(requests.length, 1);
  requests[0].resolve({ plugindata: { data: { videoroom: "attached", streams: [stream("0", a), stream("1", a, "video")] } }, jsep: { type: "offer", sdp: "" } });
  await tick();
  await tick();
  assert.equal(requests.length, 2);
  assert.deepEqual(requests[1].body, { request: "update", subscribe: [{ feed: b }, { feed: c }] });
  // One peer per feed for the call panel, all on the one handle.
  assert.deepEqual([...call.peers.values()].map((p) => p.feedId), [a, b, c]);
  // a leaves while that update is on its way; it is unsubscribed after.
  t._dropFeed(a);
  assert.deepEqual([...call.peers.values()].map((p) => p.feedId), [b, c]);
  await tick();
  assert.equal(requests.length, 2);
  requests[1].resolve({
    plugindata: { data: { videoroom: "updated", streams: [stream("0", a), stream("1", a, "video"), stream("2", b), stream("3", c)] } },
    jsep: { type: "offer", sdp: "" },
  });
  await tick();
  await tick();
  assert.equal(requests.length, 3);
  assert.deepEqual(requests[2].body, { request: "update", unsubscribe: [{ sub_mid: "0" }, { sub_mid: "1" }] });
  requests[2].resolve({ plugindata: { data: { videoroom: "updated", streams: [stream("0", null), stream("1", null), stream("2", b), stream("3", c)] } } });
  await tick();
  await tick();
  assert.equal(requests.length, 3, "nothing left to ask for");
  assert.equal(t._renegotiating, false);
  assert.deepEqual(t.subscription.midsOf(b), ["2"]);
  t.stop();
});

test("a feed Janus no longer has is left out, and the others still go in", async (ctx) => {
  ctx.mock.timers.enable({ apis: ["setTimeout"] });
  const { t, requests } = connected();
  const a = feedOf("@a:x", "A");
  const b = feedOf("@b:x", "B");
  t._subscribeAll([{ id: a }, { id: b }]);
  await tick();
  assert.deepEqual(requests[0].body.streams, [{ feed: a }, { feed: b }]);
  requests[0].resolve({ plugindata: { data: { videoroom: "event", error_code: 428, error: `No such feed (${a})` } } });
  await tick();
  await tick();
  await tick();
  assert.equal(requests.length, 2);
  assert.deepEqual(requests[1].body.streams, [{ feed: b }]);
  assert.equal(requests[1].body.request, "join", "the refused join left no subscriber behind");
  t.stop();
});
