import assert from "node:assert/strict";
import { test } from "node:test";

import { CallError, MAX_PARTICIPANTS } from "../../web/static/js/calls/group.js";
import { callPeople, callStatusText, callTitle, joinErrorText, peerStateLabel } from "../../web/static/js/views/call-status.js";

const ME = "@me:example.org";

test("alone in the call", () => {
  assert.equal(callStatusText({ selfUserId: ME, peers: [] }), "Only you are here");
});

test("people are counted, not devices, and oneself among them", () => {
  const peers = [
    { userId: "@a:example.org", state: "connected" },
    { userId: "@a:example.org", state: "connecting" },
    { userId: ME, state: "connected" }, // our other device
  ];
  assert.equal(callStatusText({ selfUserId: ME, peers }), "2 in the call");
});

test("a person with no device connected yet counts as connecting", () => {
  const peers = [
    { userId: "@a:example.org", state: "connected" },
    { userId: "@b:example.org", state: "new" },
    { userId: "@c:example.org", state: "failed" },
  ];
  assert.equal(callStatusText({ selfUserId: ME, peers }), "2 in the call · 2 connecting");
});

test("members in another app and the transport's trouble follow the count", () => {
  assert.equal(
    callStatusText({ selfUserId: ME, peers: [], foreignCount: 2, problem: "The SFU is unreachable" }),
    "Only you are here · 2 in another app · The SFU is unreachable",
  );
});

test("the title names the kind and the channel", () => {
  assert.equal(callTitle({ kind: "video", name: "standup" }), "Video · standup");
  assert.equal(callTitle({ kind: "voice", name: "lounge" }), "Voice · lounge");
});

test("peer states read as words; an unknown one as it is", () => {
  assert.equal(peerStateLabel("new"), "Connecting…");
  assert.equal(peerStateLabel("disconnected"), "Reconnecting…");
  assert.equal(peerStateLabel("checking"), "checking");
});

test("why a join failed", () => {
  const describe = (error) => `described: ${error.message}`;
  assert.equal(joinErrorText(new CallError("full", "x"), "lounge", describe), `lounge is full: a call holds ${MAX_PARTICIPANTS} people.`);
  assert.equal(joinErrorText(new CallError("media", "No microphone"), "lounge", describe), "No microphone");
  assert.equal(joinErrorText(new Error("boom"), "lounge", describe), "Could not join the call in lounge: described: boom");
});

test("each person listed once, in the order of their first device", () => {
  const members = [
    { userId: "@b:x", deviceId: "B1" },
    { userId: "@a:x", deviceId: "A1" },
    { userId: "@b:x", deviceId: "B2" },
  ];
  assert.deepEqual(callPeople(members), [
    { userId: "@b:x", foreign: false },
    { userId: "@a:x", foreign: false },
  ]);
});

test("a person is from another app only when every device of theirs is", () => {
  const members = [
    { userId: "@a:x", foreign: true },
    { userId: "@a:x", foreign: false },
    { userId: "@b:x", foreign: true },
    { userId: "@b:x", foreign: true },
  ];
  assert.deepEqual(callPeople(members), [
    { userId: "@a:x", foreign: false },
    { userId: "@b:x", foreign: true },
  ]);
});
