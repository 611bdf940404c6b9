// What the 1:1 call panel says (web/static/js/views/direct-call-text.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { clock, endedText, remoteStateOf, statusText } from "../../web/static/js/views/direct-call-text.js";

test("the clock: minutes and two-digit seconds, never negative", () => {
  assert.equal(clock(7_900), "0:07");
  assert.equal(clock(750_000), "12:30");
  assert.equal(clock(-5), "0:00");
});

test("the status line follows the call", () => {
  assert.equal(statusText({ state: "preparing" }, "Bob"), "Starting the call…");
  assert.equal(statusText({ state: "inviting" }, "Bob"), "Calling Bob…");
  assert.equal(statusText({ state: "answering" }, "Bob"), "Connecting…");
  assert.equal(statusText({ state: "connecting" }, "Bob"), "Connecting…");
  assert.equal(statusText({ state: "connecting", everConnected: true }, "Bob"), "Reconnecting…");
  assert.equal(statusText({ state: "connected", connectedAt: 1_000 }, "Bob", 66_000), "Connected · 1:05");
  assert.equal(statusText({ state: "ended", endReason: "user_busy" }, "Bob"), "They are busy");
  assert.equal(statusText({ state: "ringing" }, "Bob"), "");
});

test("how a call ended depends on who ended it and which way it went", () => {
  assert.equal(endedText({ state: "ended", endReason: "rejected", endedBy: "remote" }), "They declined the call");
  assert.equal(endedText({ state: "ended", endReason: "rejected", endedBy: "local" }), "You declined the call");
  assert.equal(endedText({ state: "ended", endReason: "invite_timeout", direction: "outbound" }), "No answer");
  assert.equal(endedText({ state: "ended", endReason: "invite_timeout", direction: "inbound" }), "Missed call");
  assert.equal(endedText({ state: "ended", endReason: "user_hangup", endedBy: "remote" }), "They ended the call");
  assert.equal(endedText({ state: "ended", endReason: "user_hangup", endedBy: "local" }), "Call ended");
  assert.equal(endedText({ state: "ended", endReason: "user_media_failed", endedBy: "local" }), "No access to a camera or microphone");
  assert.equal(endedText({ state: "ended", endReason: "something new" }), "Call ended");
});

test("what the other side says of its microphone and camera", () => {
  assert.deepEqual(remoteStateOf({ ended: false, video: true, remoteMuted: { audio: true, video: true } }, "Bob"), {
    audioMuted: true,
    videoMuted: true,
    text: "Bob is muted · camera off",
  });
  // No camera note in a voice call; nothing once the call ended.
  assert.deepEqual(remoteStateOf({ ended: false, video: false, remoteMuted: { audio: false, video: true } }, "Bob"), {
    audioMuted: false,
    videoMuted: false,
    text: "",
  });
  assert.deepEqual(remoteStateOf({ ended: true, video: true, remoteMuted: { audio: true, video: true } }, "Bob"), {
    audioMuted: false,
    videoMuted: false,
    text: "",
  });
});
