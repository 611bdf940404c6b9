// The lines 1:1 calls leave in a conversation's timeline (web/static/js/calls/notices.js), read
// from any client's call events.

import assert from "node:assert/strict";
import { test } from "node:test";

import { callNotice } from "../../web/static/js/calls/notices.js";

const ALICE = "@alice:x";
const BOB = "@bob:x";
const VIDEO_SDP = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
const VOICE_SDP = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";

function room(...timeline) {
  return { timeline, displayName: (id) => (id === ALICE ? "Alice" : "Bob") };
}

function event(type, sender, ts, content = {}) {
  return { type, sender, origin_server_ts: ts, content: { call_id: "c1", version: "1", ...content } };
}

const invite = (sdp = VIDEO_SDP) =>
  event("m.call.invite", ALICE, 1_000, { invitee: BOB, lifetime: 60_000, offer: { type: "offer", sdp } });

test("an answered call that ended says how long it lasted", () => {
  const hangup = event("m.call.hangup", BOB, 66_000, { reason: "user_hangup" });
  const r = room(invite(), event("m.call.answer", BOB, 1_000), hangup);
  assert.equal(callNotice(r, hangup, ALICE), "Video call ended · 1:05");
  // The invite and the answer say nothing of their own.
  assert.equal(callNotice(r, r.timeline[0], ALICE, 200_000), null);
});

test("an answered call that never connected says so, not a duration", () => {
  const hangup = event("m.call.hangup", ALICE, 17_000, { reason: "ice_failed" });
  const r = room(invite(VOICE_SDP), event("m.call.answer", BOB, 1_500), hangup);
  assert.equal(callNotice(r, hangup, ALICE), "Voice call could not connect");
  assert.equal(callNotice(r, hangup, BOB), "Voice call could not connect");
});

test("a lost connection after talking still counts the time", () => {
  const hangup = event("m.call.hangup", ALICE, 31_000, { reason: "ice_timeout" });
  const r = room(invite(), event("m.call.answer", BOB, 1_000), hangup);
  assert.equal(callNotice(r, hangup, ALICE), "Video call ended · 0:30");
});

test("declined, missed and unanswered calls", () => {
  const reject = event("m.call.reject", BOB, 5_000);
  assert.equal(callNotice(room(invite(), reject), reject, ALICE), "Bob declined the call");
  assert.equal(callNotice(room(invite(), reject), reject, BOB), "You declined the call");
  const hangup = event("m.call.hangup", ALICE, 20_000, { reason: "user_hangup" });
  assert.equal(callNotice(room(invite(), hangup), hangup, BOB), "Missed video call from Alice");
  assert.equal(callNotice(room(invite(), hangup), hangup, ALICE), "Bob did not answer your video call");
});
