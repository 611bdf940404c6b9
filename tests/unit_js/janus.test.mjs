// The SFU transport's credential upkeep (web/static/js/calls/janus.js): when it asks the bridge
// for new tokens, and what it does when Janus refuses a keepalive's token or ends the session.
import assert from "node:assert/strict";
import { mock, test } from "node:test";

import { JanusTransport, refreshDelay } from "../../web/static/js/calls/janus.js";

const NOW = 1_800_000_000_000;

test("credentials are asked for again a third of their lifetime after they came", () => {
  assert.equal(refreshDelay(NOW + 180_000, NOW), 60_000);
  assert.equal(refreshDelay(NOW + 90_000, NOW), 30_000);
  assert.equal(refreshDelay(NOW + 15_000, NOW), 5_000);
});

test("never sooner than 5 s nor later than a minute, and a minute when the expiry is unknown", () => {
  assert.equal(refreshDelay(NOW - 10_000, NOW), 5_000); // already expired: as soon as allowed
  assert.equal(refreshDelay(NOW + 3_600_000, NOW), 60_000);
  assert.equal(refreshDelay(undefined, NOW), 60_000);
});

/** A transport on a fake call, its bridge answering with `answers` in turn (an Error: refused). */
function transport(answers) {
  const left = [];
  const call = { peers: new Map(), leave: (why) => left.push(why), _changed: () => {} };
  let asked = 0;
  const fetchCredentials = async () => {
    const answer = answers[Math.min(asked++, answers.length - 1)];
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const t = new JanusTransport(call, fetchCredentials);
  return { t, left, asked: () => asked };
}

function refused(status) {
  return Object.assign(new Error(`refused ${status}`), { status });
}

test("a failed refresh is tried again after 5 s, not a minute later", async (ctx) => {
  ctx.mock.timers.enable({ apis: ["setTimeout", "Date"], now: NOW });
  // Valid for 3 minutes from when it comes, 5 s from now.
  const fresh = { token: "new", expires_at: NOW + 5_000 + 180_000 };
  const { t, asked } = transport([refused(502), fresh]);
  await t._refreshCredentials();
  assert.equal(asked(), 1);
  assert.equal(t.credentials, null, "nothing taken from a failed answer");
  ctx.mock.timers.tick(5_000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(), 2);
  assert.equal(t.credentials, fresh);
  // Then the next one a third of the new lifetime later, not every 5 s.
  ctx.mock.timers.tick(59_000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(), 2);
  ctx.mock.timers.tick(2_000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(), 3);
  t.stop();
});

test("a refusal from the bridge leaves the call and asks no more", async (ctx) => {
  ctx.mock.timers.enable({ apis: ["setTimeout", "Date"], now: NOW });
  const { t, left, asked } = transport([refused(403)]);
  await t._refreshCredentials();
  assert.deepEqual(left, ["forbidden"]);
  t.stop(); // what leaving does
  ctx.mock.timers.tick(120_000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(), 1);
});

test("a keepalive refused for its token asks for new credentials at once", async () => {
  const fresh = { token: "new", expires_at: Date.now() + 180_000 };
  const { t, asked } = transport([fresh]);
  t._onMessage(JSON.stringify({ janus: "error", transaction: "keepalive-1", error: { code: 403, reason: "Unauthorized request (wrong or missing secret/token)" } }));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(), 1);
  assert.equal(t.credentials, fresh);
  t.stop();
});

test("a session Janus timed out is joined again, as when the SFU went away", () => {
  const { t } = transport([]);
  const lost = mock.method(t, "_lost", () => {});
  t._onMessage(JSON.stringify({ janus: "timeout", session_id: 1 }));
  assert.equal(lost.mock.callCount(), 1);
  // Other errors without a waiting request change nothing.
  t._onMessage(JSON.stringify({ janus: "error", error: { code: 458, reason: "No such session" } }));
  assert.equal(lost.mock.callCount(), 1);
  t.stop();
});
