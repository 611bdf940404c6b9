// A room's outgoing messages, sent one at a time in the order typed (as Element's scheduler does).
//
// The next message goes out only once the previous one's `/send` answered, so the homeserver
// orders them as typed. A 429 is waited out for its `retry_after_ms`; a lost connection or a 5xx
// is retried with backoff; every retry reuses the message's transaction id, so the homeserver
// never stores it twice. When a message is given up, the ones queued behind it are given up too
// (none may overtake it); a manual retry sends it again after whatever is queued then — where
// its local echo already stands, below the messages that did arrive. No DOM and no fetch here:
// the request is passed in, which keeps the rules testable on their own.

/**
 * @typedef {object} OutgoingMessage  one queued message and its local echo
 * @property {string} txnId  the transaction id, the same on every retry
 * @property {string} type  the event type
 * @property {object} content
 * @property {"queued"|"sending"|"sent"|"failed"} status
 * @property {string|null} eventId  the homeserver's id once sent
 * @property {number} ts  when it was typed (ms since the epoch)
 * @property {unknown} [error]  why it was given up
 */

/**
 * @typedef {object} RetryPolicy
 * @property {number} connectionRetries  retries while the homeserver cannot be reached at all
 * @property {number} serverErrorRetries  retries after a 5xx answer
 * @property {number} rateLimitWaits  429s waited out for one message before it is given up
 * @property {number} baseDelayMs  the first backoff; doubled each retry
 * @property {number} maxDelayMs  the longest backoff
 */

/** @type {RetryPolicy} */
export const DEFAULT_POLICY = Object.freeze({
  // About five minutes of backoff: a homeserver restart or a short network loss is waited out.
  connectionRetries: 60,
  serverErrorRetries: 4,
  rateLimitWaits: 30,
  baseDelayMs: 1000,
  maxDelayMs: 5000,
});

/**
 * What to do after a failed attempt: wait and try again, or give up.
 * @param {any} error  what the request threw (a MatrixError, a ConnectionError, anything)
 * @param {{connection: number, server: number, rateLimit: number}} tries  retries made so far, by cause
 * @param {RetryPolicy} policy
 * @returns {{retry: true, delayMs: number, cause: "connection"|"server"|"rateLimit"} | {retry: false}}
 */
export function nextStep(error, tries, policy = DEFAULT_POLICY) {
  const backoff = (n) => Math.min(policy.baseDelayMs * 2 ** n, policy.maxDelayMs);
  if (error?.name === "ConnectionError") {
    return tries.connection < policy.connectionRetries
      ? { retry: true, delayMs: backoff(tries.connection), cause: "connection" }
      : { retry: false };
  }
  const status = Number(error?.status) || 0;
  if (status === 429 || error?.errcode === "M_LIMIT_EXCEEDED") {
    if (tries.rateLimit >= policy.rateLimitWaits) return { retry: false };
    const asked = Number(error?.data?.retry_after_ms);
    const delayMs = Number.isFinite(asked) && asked >= 0 ? asked : backoff(tries.rateLimit);
    return { retry: true, delayMs, cause: "rateLimit" };
  }
  if (status >= 500) {
    return tries.server < policy.serverErrorRetries
      ? { retry: true, delayMs: backoff(tries.server), cause: "server" }
      : { retry: false };
  }
  // Anything else (forbidden, too large, a bad request) will not go better by asking again.
  return { retry: false };
}

const defaultSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class SendQueue {
  /**
   * @param {object} options
   * @param {(message: OutgoingMessage) => Promise<{event_id: string}>} options.send  one attempt
   * @param {(message: OutgoingMessage) => void} [options.onChange]  a message changed status
   * @param {(ms: number) => Promise<void>} [options.sleep]
   * @param {RetryPolicy} [options.policy]
   */
  constructor({ send, onChange = () => {}, sleep = defaultSleep, policy = DEFAULT_POLICY }) {
    this.send = send;
    this.onChange = onChange;
    this.sleep = sleep;
    this.policy = policy;
    /** @type {OutgoingMessage[]} waiting, the head one being sent */
    this.waiting = [];
    this.running = false;
    /** @type {Promise<void>} settles when the queue is idle */
    this.idle = Promise.resolve();
  }

  /**
   * Queue a message; it is sent after every one queued before it.
   * @param {string} type
   * @param {object} content
   * @param {{txnId: string, ts?: number}} ids
   * @returns {OutgoingMessage}
   */
  enqueue(type, content, { txnId, ts = Date.now() }) {
    /** @type {OutgoingMessage} */
    const message = { txnId, type, content, status: "queued", eventId: null, ts };
    this.waiting.push(message);
    this.start();
    return message;
  }

  /**
   * Send a message that was given up again, with the same transaction id, after whatever is
   * queued now.
   * @param {OutgoingMessage} message
   */
  retry(message) {
    if (message.status !== "failed") return;
    message.status = "queued";
    delete message.error;
    this.waiting.push(message);
    this.onChange(message);
    this.start();
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.idle = this.run().finally(() => {
      this.running = false;
    });
  }

  async run() {
    while (this.waiting.length) {
      const message = this.waiting[0];
      if (await this.attempt(message)) {
        this.waiting.shift();
        continue;
      }
      // Given up: nothing queued behind it may overtake it.
      const given = this.waiting;
      this.waiting = [];
      for (const later of given) {
        later.status = "failed";
        later.error ??= message.error;
      }
      for (const later of given) this.onChange(later);
    }
  }

  /** Send one message until it is answered or given up; true when sent. */
  async attempt(message) {
    const tries = { connection: 0, server: 0, rateLimit: 0 };
    message.status = "sending";
    this.onChange(message);
    for (;;) {
      try {
        const answer = await this.send(message);
        message.eventId = answer.event_id;
        message.status = "sent";
        this.onChange(message);
        return true;
      } catch (error) {
        const step = nextStep(error, tries, this.policy);
        if (!step.retry) {
          message.status = "failed";
          message.error = error;
          return false;
        }
        tries[step.cause] += 1;
        await this.sleep(step.delayMs);
      }
    }
  }
}
