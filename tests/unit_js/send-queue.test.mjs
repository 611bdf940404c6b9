// The send queue's rules (web/static/js/send-queue.js): order, 429s, transient failures, giving up.

import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_POLICY, SendQueue, nextStep } from "../../web/static/js/send-queue.js";

class FakeMatrixError extends Error {
  constructor(status, errcode, data = {}) {
    super(errcode);
    this.name = "MatrixError";
    this.status = status;
    this.errcode = errcode;
    this.data = data;
  }
}

class FakeConnectionError extends Error {
  constructor() {
    super("unreachable");
    this.name = "ConnectionError";
  }
}

const rateLimited = (ms) => new FakeMatrixError(429, "M_LIMIT_EXCEEDED", { retry_after_ms: ms });

/**
 * A homeserver scripted per transaction id: each attempt takes the next scripted outcome
 * (an error to throw), and succeeds once the script runs out. Records every attempt in order.
 */
function scriptedServer(script = {}) {
  const attempts = [];
  const arrived = [];
  const inFlight = { now: 0, most: 0 };
  async function send(message) {
    attempts.push(message.txnId);
    inFlight.now += 1;
    inFlight.most = Math.max(inFlight.most, inFlight.now);
    await Promise.resolve();
    inFlight.now -= 1;
    const outcome = (script[message.txnId] ?? []).shift();
    if (outcome) throw outcome;
    if (!arrived.includes(message.txnId)) arrived.push(message.txnId);
    return { event_id: `$${message.txnId}` };
  }
  return { send, attempts, arrived, inFlight };
}

function makeQueue(server, policy = DEFAULT_POLICY) {
  const slept = [];
  const queue = new SendQueue({
    send: server.send,
    sleep: async (ms) => {
      slept.push(ms);
    },
    policy,
  });
  return { queue, slept };
}

const enqueueAll = (queue, ids) => ids.map((id) => queue.enqueue("m.room.message", { body: id }, { txnId: id }));

test("messages are sent one at a time, in the order queued", async () => {
  const server = scriptedServer();
  const { queue } = makeQueue(server);
  const ids = Array.from({ length: 15 }, (_, i) => `t${i}`);
  const messages = enqueueAll(queue, ids);
  await queue.idle;
  assert.deepEqual(server.arrived, ids);
  assert.equal(server.inFlight.most, 1);
  assert.ok(messages.every((m) => m.status === "sent"));
  assert.deepEqual(messages.map((m) => m.eventId), ids.map((id) => `$${id}`));
});

test("a 429 is waited out for retry_after_ms and the order holds", async () => {
  const server = scriptedServer({ t3: [rateLimited(4800), rateLimited(200)] });
  const { queue, slept } = makeQueue(server);
  const ids = ["t0", "t1", "t2", "t3", "t4", "t5"];
  const messages = enqueueAll(queue, ids);
  await queue.idle;
  assert.deepEqual(slept, [4800, 200]);
  assert.deepEqual(server.arrived, ids);
  // Retried with the same transaction id; the next one only after it was answered.
  assert.deepEqual(server.attempts, ["t0", "t1", "t2", "t3", "t3", "t3", "t4", "t5"]);
  assert.ok(messages.every((m) => m.status === "sent"));
});

test("a 429 without retry_after_ms backs off", () => {
  const step = nextStep(new FakeMatrixError(429, "M_LIMIT_EXCEEDED"), { connection: 0, server: 0, rateLimit: 2 });
  assert.deepEqual(step, { retry: true, delayMs: 4000, cause: "rateLimit" });
});

test("lost connections and 5xx are retried with growing backoff", async () => {
  const server = scriptedServer({
    t0: [new FakeConnectionError(), new FakeConnectionError()],
    t1: [new FakeMatrixError(502, "M_UNKNOWN"), new FakeMatrixError(500, "M_UNKNOWN")],
  });
  const { queue, slept } = makeQueue(server);
  const messages = enqueueAll(queue, ["t0", "t1", "t2"]);
  await queue.idle;
  assert.deepEqual(slept, [1000, 2000, 1000, 2000]);
  assert.deepEqual(server.arrived, ["t0", "t1", "t2"]);
  assert.ok(messages.every((m) => m.status === "sent"));
});

test("after its retries a message is given up, and the ones behind it with it", async () => {
  const errors = Array.from({ length: DEFAULT_POLICY.serverErrorRetries + 1 }, () => new FakeMatrixError(503, "M_UNKNOWN"));
  const server = scriptedServer({ t1: errors });
  const changed = [];
  const queue = new SendQueue({ send: server.send, sleep: async () => {}, onChange: (m) => changed.push(`${m.txnId}:${m.status}`) });
  const messages = enqueueAll(queue, ["t0", "t1", "t2", "t3"]);
  await queue.idle;
  assert.deepEqual(server.arrived, ["t0"]);
  assert.deepEqual(messages.map((m) => m.status), ["sent", "failed", "failed", "failed"]);
  // Nothing behind the failed one was even tried: it may not overtake it.
  assert.ok(!server.attempts.includes("t2") && !server.attempts.includes("t3"));
  assert.equal(messages[1].error.status, 503);
  assert.ok(changed.includes("t3:failed"));
});

test("a permanent error gives up at once", async () => {
  const server = scriptedServer({ t0: [new FakeMatrixError(403, "M_FORBIDDEN")] });
  const { queue, slept } = makeQueue(server);
  const [message] = enqueueAll(queue, ["t0"]);
  await queue.idle;
  assert.equal(message.status, "failed");
  assert.deepEqual(slept, []);
  assert.deepEqual(server.attempts, ["t0"]);
});

test("a manual retry sends again with the same txn id, after what is queued then", async () => {
  const server = scriptedServer({ t0: [new FakeMatrixError(403, "M_FORBIDDEN")] });
  const { queue } = makeQueue(server);
  const [first, second] = enqueueAll(queue, ["t0", "t1"]);
  await queue.idle;
  assert.deepEqual([first.status, second.status], ["failed", "failed"]);

  queue.retry(first);
  queue.retry(second);
  enqueueAll(queue, ["t2"]);
  await queue.idle;
  assert.deepEqual(server.arrived, ["t0", "t1", "t2"]);
  assert.deepEqual([first.eventId, second.eventId], ["$t0", "$t1"]);

  // A retry while others are queued lines up behind them.
  const later = scriptedServer({ a: [new FakeMatrixError(400, "M_BAD_JSON")] });
  const { queue: q2 } = makeQueue(later);
  const [a] = enqueueAll(q2, ["a"]);
  await q2.idle;
  enqueueAll(q2, ["b", "c"]);
  q2.retry(a);
  await q2.idle;
  assert.deepEqual(later.arrived, ["b", "c", "a"]);
});

test("retrying a message that was not given up does nothing", async () => {
  const server = scriptedServer();
  const { queue } = makeQueue(server);
  const [message] = enqueueAll(queue, ["t0"]);
  await queue.idle;
  queue.retry(message);
  await queue.idle;
  assert.deepEqual(server.attempts, ["t0"]);
});

test("rate limits are waited out only so many times", () => {
  const tries = { connection: 0, server: 0, rateLimit: DEFAULT_POLICY.rateLimitWaits };
  assert.deepEqual(nextStep(rateLimited(100), tries), { retry: false });
  assert.deepEqual(nextStep(new FakeConnectionError(), { ...tries, connection: DEFAULT_POLICY.connectionRetries }), {
    retry: false,
  });
  assert.equal(nextStep(new FakeConnectionError(), { connection: 10, server: 0, rateLimit: 0 }).delayMs, DEFAULT_POLICY.maxDelayMs);
});
