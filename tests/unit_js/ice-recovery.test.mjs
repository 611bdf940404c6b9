// When a 1:1 call restarts ICE and when it gives up (web/static/js/calls/ice-recovery.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { IceRecovery, MAX_ICE_RESTARTS } from "../../web/static/js/calls/ice-recovery.js";

/** An IceRecovery on a fake clock: `advance(ms)` fires the timers that fall due. */
function harness(options = {}) {
  let now = 0;
  let nextId = 1;
  const timers = new Map();
  const log = [];
  const recovery = new IceRecovery({
    restart: () => log.push(`restart@${now}`),
    giveUp: () => log.push(`give up@${now}`),
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    graceMs: 3_000,
    attemptMs: 30_000,
    ...options,
  });
  const advance = (ms) => {
    const end = now + ms;
    for (;;) {
      const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].fn();
    }
    now = end;
  };
  return { recovery, log, advance, timers };
}

test("a failed connection restarts ICE at once, and connecting again ends the attempt", () => {
  const { recovery, log, advance, timers } = harness();
  recovery.onState("connecting");
  recovery.onState("failed");
  assert.deepEqual(log, ["restart@0"]);
  assert.equal(recovery.recovering, true);
  advance(5_000);
  recovery.onState("connecting");
  recovery.onState("connected");
  assert.equal(recovery.recovering, false);
  assert.equal(recovery.attempts, 0);
  assert.equal(recovery.restarts, 1);
  assert.equal(timers.size, 0, "no deadline left running");
  advance(60_000);
  assert.deepEqual(log, ["restart@0"]);
});

test("each failed attempt restarts again, up to the bound, then the call gives up", () => {
  const { recovery, log, advance } = harness();
  recovery.onState("failed");
  for (let i = 1; i < MAX_ICE_RESTARTS; i++) {
    advance(1_000);
    recovery.onState("connecting");
    recovery.onState("failed");
  }
  assert.equal(recovery.restarts, MAX_ICE_RESTARTS);
  advance(1_000);
  recovery.onState("connecting");
  recovery.onState("failed");
  assert.equal(log.at(-1), `give up@${MAX_ICE_RESTARTS * 1_000}`);
  assert.equal(log.filter((l) => l.startsWith("restart")).length, MAX_ICE_RESTARTS);
  // Nothing more happens after giving up, whatever the connection says.
  recovery.onState("failed");
  advance(120_000);
  assert.equal(log.filter((l) => l.startsWith("give up")).length, 1);
});

test("an attempt that hears nothing back fails at its deadline", () => {
  // E.g. the other side never answers the m.call.negotiate: the connection stays "failed".
  const { recovery, log, advance } = harness({ maxRestarts: 2 });
  recovery.onState("failed");
  advance(29_999);
  assert.deepEqual(log, ["restart@0"]);
  advance(1);
  assert.deepEqual(log, ["restart@0", "restart@30000"]);
  advance(30_000);
  assert.deepEqual(log, ["restart@0", "restart@30000", "give up@60000"]);
});

test("a short disconnection heals without a restart; a long one counts as a failure", () => {
  const { recovery, log, advance } = harness();
  recovery.onState("connected");
  recovery.onState("disconnected");
  advance(2_999);
  recovery.onState("connected");
  advance(10_000);
  assert.deepEqual(log, []);

  recovery.onState("disconnected");
  advance(3_000);
  assert.deepEqual(log, ["restart@15999"]);
  // Disconnected again while that attempt runs: its deadline decides, no second grace timer.
  recovery.onState("connecting");
  recovery.onState("disconnected");
  advance(3_000);
  assert.deepEqual(log, ["restart@15999"]);
  recovery.onState("connected");
  assert.equal(recovery.attempts, 0);
});

test("connecting again gives a later failure the full set of attempts", () => {
  const { recovery, log } = harness({ maxRestarts: 1 });
  recovery.onState("failed");
  recovery.onState("connected");
  recovery.onState("failed");
  assert.deepEqual(log, ["restart@0", "restart@0"]);
  recovery.onState("failed");
  assert.deepEqual(log, ["restart@0", "restart@0", "give up@0"]);
});

test("a call that ends stops every timer", () => {
  const { recovery, log, advance, timers } = harness();
  recovery.onState("disconnected");
  recovery.stop();
  assert.equal(timers.size, 0);
  advance(60_000);
  recovery.onState("failed");
  assert.deepEqual(log, []);

  const closed = harness();
  closed.recovery.onState("failed");
  closed.recovery.onState("closed");
  assert.equal(closed.timers.size, 0);
  closed.advance(60_000);
  assert.deepEqual(closed.log, ["restart@0"]);
});
