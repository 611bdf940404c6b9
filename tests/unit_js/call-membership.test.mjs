// The MatrixRTC membership a Guilds tab writes for a channel call (web/static/js/calls/group.js)
// and how it is read back: `expires` is a duration counted from `created_ts`, as matrix-js-sdk 43
// reads it, never an absolute time; `expires_ts` is the same moment, absolute (docs/CALLS.md,
// "Membership"). tests/browser/test_interop_calls.py checks the same against matrix-js-sdk 43.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { CALL_MEMBER, GroupCall, callMembers, memberKey, membershipExpiry } from "../../web/static/js/calls/group.js";
import { JANUS_FOCUS } from "../../web/static/js/calls/janus.js";
import { Room } from "../../web/static/js/sync.js";

const NOW = 1_800_000_000_000;
const MINUTE = 60_000;
// MatrixRTC's own default lifetime of a membership; a duration is well below it, an absolute
// time (ms since 1970) some ten million times above.
const FOUR_HOURS = 4 * 60 * MINUTE;

beforeEach(() => mock.timers.enable({ apis: ["Date"], now: NOW }));
afterEach(() => mock.timers.reset());

/** A call of this tab that joined at `joinedAt` (the membership's writer, without its media). */
function call(joinedAt, kind = "voice") {
  const session = { userId: "@alice:example.org", deviceId: "ALICEDEV" };
  const groupCall = new GroupCall({ client: null, sync: null, session, roomId: "!talk:example.org", kind });
  groupCall.createdTs = joinedAt;
  return groupCall;
}

/** `content` as the state event it becomes, timestamped by the homeserver `lag` ms later. */
function asEvent(content, lag = 300) {
  return {
    type: CALL_MEMBER,
    state_key: memberKey("@alice:example.org", "ALICEDEV"),
    sender: "@alice:example.org",
    origin_server_ts: Date.now() + lag,
    content,
  };
}

test("a fresh membership expires a duration after created_ts, and expires_ts is that moment", () => {
  const content = call(NOW).membershipContent();
  assert.equal(content.created_ts, NOW);
  assert.ok(content.expires > 0 && content.expires <= FOUR_HOURS, `expires ${content.expires} is no duration`);
  assert.equal(content.expires_ts, content.created_ts + content.expires);
  assert.ok(content.expires_ts > NOW);
  assert.equal(membershipExpiry(asEvent(content)), content.expires_ts);
});

test("a refresh later in the call lengthens the duration from the join, not from the refresh", () => {
  const groupCall = call(NOW);
  const first = groupCall.membershipContent();
  mock.timers.tick(20 * MINUTE);
  const refreshed = groupCall.membershipContent();
  assert.equal(refreshed.created_ts, NOW, "created_ts stays the join");
  assert.equal(refreshed.expires, first.expires + 20 * MINUTE);
  assert.ok(refreshed.expires <= FOUR_HOURS, refreshed.expires);
  assert.equal(refreshed.expires_ts, NOW + refreshed.expires);
  assert.equal(refreshed.expires_ts, first.expires_ts + 20 * MINUTE);
  assert.equal(membershipExpiry(asEvent(refreshed)), refreshed.expires_ts);
});

test("expiry is read as MatrixRTC reads it: created_ts + expires first, expires_ts only alone", () => {
  // Where the two disagree, the duration wins (matrix-js-sdk 43 ignores expires_ts then).
  assert.equal(membershipExpiry({ content: { created_ts: NOW, expires: 1_000, expires_ts: NOW + 9_000 } }), NOW + 1_000);
  // Without created_ts, the duration counts from the event's timestamp.
  assert.equal(membershipExpiry({ origin_server_ts: NOW + 5, content: { expires: 1_000 } }), NOW + 1_005);
  assert.equal(membershipExpiry({ content: { created_ts: NOW, expires_ts: NOW + 9_000 } }), NOW + 9_000);
  assert.equal(membershipExpiry({ content: { created_ts: NOW } }), NOW + FOUR_HOURS);
});

test("an expiry written as an absolute time would not read as the moment meant", () => {
  // The mistake the duration guards against: `expires` set to the absolute expiry would be read
  // as an expiry decades away, a membership that never ends for MatrixRTC readers.
  const content = call(NOW).membershipContent();
  const wrong = { ...content, expires: content.expires_ts };
  assert.notEqual(membershipExpiry(asEvent(wrong)), content.expires_ts);
  assert.ok(membershipExpiry(asEvent(wrong)) > NOW + 50 * 365 * 24 * 60 * MINUTE);
});

test("the membership names this tab's transport: the mesh, or Guilds' Janus on the SFU", () => {
  const mesh = call(NOW, "video").membershipContent();
  assert.deepEqual(mesh.focus_active, { type: "mesh" });
  assert.deepEqual(mesh.foci_preferred, []);
  assert.equal(mesh["m.call.intent"], "video");
  const sfu = call(NOW);
  // As join() leaves it once the bridge gave credentials and the Janus transport started.
  sfu.focusType = JANUS_FOCUS;
  sfu.transport = {};
  const janus = sfu.membershipContent();
  assert.deepEqual(janus.focus_active, { type: "org.guilds.janus" });
  assert.deepEqual(janus.foci_preferred, [{ type: "org.guilds.janus" }]);
  assert.equal(janus["m.call.intent"], "audio");
});

test("a member on Element Call's LiveKit is in the call from another app, on either Guilds transport", () => {
  const room = new Room("!talk:example.org");
  const members = [
    ["@mesh:example.org", { type: "mesh" }],
    ["@janus:example.org", { type: JANUS_FOCUS }],
    ["@ec:example.org", { type: "livekit", focus_selection: "oldest_membership" }],
  ];
  for (const [userId, focus] of members) {
    room.applyState({
      type: CALL_MEMBER,
      state_key: memberKey(userId, "DEV"),
      sender: userId,
      origin_server_ts: NOW,
      content: { application: "m.call", scope: "m.room", device_id: "DEV", focus_active: focus, created_ts: NOW, expires: MINUTE },
    });
  }
  const foreign = Object.fromEntries(callMembers(room, NOW).map((m) => [m.userId, m.foreign]));
  assert.deepEqual(foreign, { "@mesh:example.org": false, "@janus:example.org": false, "@ec:example.org": true });
});
