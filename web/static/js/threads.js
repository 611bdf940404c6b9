// Threads as the Matrix spec has them (`m.thread` relations): what a thread reply's content is,
// which events are thread replies, and what each thread of a room holds — its replies known here,
// its reply count and latest reply — from the server's bundled aggregation and the replies seen
// since. No DOM and no fetch: the views and the sync engine call this.

export const THREAD_REL = "m.thread";

/**
 * The `m.relates_to` of a reply in thread `rootId`. `latestId` is the thread's newest event (the
 * root when it has no reply yet): the `m.in_reply_to` fallback, flagged `is_falling_back`, that
 * lets a client without threads show the message as a reply to it. Replying to one message of
 * the thread on purpose (`quotedId`) is a real reply: no fallback flag.
 * @param {string} rootId
 * @param {string} latestId
 * @param {string|null} [quotedId]
 */
export function threadRelation(rootId, latestId, quotedId = null) {
  return {
    rel_type: THREAD_REL,
    event_id: rootId,
    is_falling_back: !quotedId,
    "m.in_reply_to": { event_id: quotedId ?? latestId },
  };
}

/**
 * A message's content made a reply in thread `rootId` (a copy; `content` is left alone).
 * @param {Record<string, any>} content  an m.room.message content (from markdown.js)
 * @param {string} rootId
 * @param {string} latestId
 * @param {string|null} [quotedId]
 */
export function threadReplyContent(content, rootId, latestId, quotedId = null) {
  return { ...content, "m.relates_to": threadRelation(rootId, latestId, quotedId) };
}

/** The root id of the thread an event is a reply in, or null when it is in no thread. */
export function threadRootOf(event) {
  const rel = event?.content?.["m.relates_to"];
  return rel?.rel_type === THREAD_REL && typeof rel.event_id === "string" ? rel.event_id : null;
}

/** Whether an event's `m.in_reply_to` is only the fallback for clients without threads. */
export function isFallbackReply(event) {
  const rel = event?.content?.["m.relates_to"];
  return rel?.rel_type === THREAD_REL && rel.is_falling_back !== false;
}

/**
 * Whether a thread may start at this event: a message of its own (the spec forbids a root that
 * is itself a relation, such as an edit or a thread reply).
 */
export function canBeThreadRoot(event) {
  if (event?.type !== "m.room.message" || typeof event.event_id !== "string") return false;
  if (event.event_id.startsWith("~")) return false; // a local echo has no id yet
  return !event.content?.["m.relates_to"]?.rel_type;
}

/**
 * The server's summary of a thread bundled with its root, or null.
 * @returns {{count: number, latest: Record<string, any>|null}|null}
 */
export function bundledThread(event) {
  const bundle = event?.unsigned?.["m.relations"]?.[THREAD_REL];
  if (!bundle || typeof bundle !== "object") return null;
  const count = Number.isInteger(bundle.count) && bundle.count >= 0 ? bundle.count : 0;
  const latest = bundle.latest_event && typeof bundle.latest_event.event_id === "string" ? bundle.latest_event : null;
  return { count, latest };
}

const ts = (event) => (Number.isFinite(event?.origin_server_ts) ? event.origin_server_ts : 0);

/**
 * @typedef {object} ThreadSummary
 * @property {string} rootId
 * @property {number} count  replies in the thread
 * @property {Record<string, any>|null} latest  the newest reply
 */

/**
 * The threads of one room. Replies arrive from several places in any order — the live sync, a
 * page of history, the thread's own `/relations` — and a root may carry the server's count of
 * its replies, taken at some moment: the count shown is that base plus the replies newer than
 * its latest, until the whole thread has been fetched and counting what is here is exact.
 */
export class ThreadIndex {
  constructor() {
    /** @type {Map<string, {notifications: number, highlights: number}>} unread counts by root, from the sync */
    this.unread = new Map();
    /** @type {Map<string, string>} the reply this client last marked read, by root */
    this.readUpTo = new Map();
    /** @type {Map<string, {replies: Map<string, Record<string, any>>, base: ReturnType<typeof bundledThread>, complete: boolean}>} */
    this.threads = new Map();
    /** @type {Set<string>} */
    this.redacted = new Set();
  }

  _thread(rootId) {
    let thread = this.threads.get(rootId);
    if (!thread) this.threads.set(rootId, (thread = { replies: new Map(), base: null, complete: false }));
    return thread;
  }

  /** Take in one event, whatever path it came by; a second sight of it changes nothing. */
  add(event) {
    if (!event || typeof event.event_id !== "string") return;
    const rootId = threadRootOf(event);
    if (rootId && !this.redacted.has(event.event_id)) this._thread(rootId).replies.set(event.event_id, event);
    const bundle = bundledThread(event);
    if (bundle) {
      const thread = this._thread(event.event_id);
      // Keep the newer of two snapshots (a root seen again in an older page of history).
      if (!thread.base || ts(bundle.latest) >= ts(thread.base.latest)) thread.base = bundle;
    }
  }

  /** Record that `events` are the whole of thread `rootId` (its `/relations`, every page). */
  setComplete(rootId, events) {
    const thread = this._thread(rootId);
    for (const event of events) this.add(event);
    thread.complete = true;
  }

  /** Whether every reply of the thread is known here. */
  isComplete(rootId) {
    return this.threads.get(rootId)?.complete ?? false;
  }

  redact(eventId) {
    this.redacted.add(eventId);
    for (const thread of this.threads.values()) {
      const reply = thread.replies.get(eventId) ?? (thread.base?.latest?.event_id === eventId ? thread.base.latest : null);
      if (!reply) continue;
      thread.replies.delete(eventId);
      // The server no longer counts a removed reply: when the base counted it, count one less.
      const base = thread.base;
      if (base && (reply.event_id === base.latest?.event_id || ts(reply) <= ts(base.latest))) {
        thread.base = { ...base, count: Math.max(0, base.count - 1) };
      }
    }
  }

  /**
   * Take a sync's `unread_thread_notifications` (root → counts): the whole set, so a thread
   * missing from it has nothing unread.
   * @param {Record<string, {notification_count?: number, highlight_count?: number}>} byRoot
   */
  setUnread(byRoot) {
    this.unread = new Map();
    for (const [rootId, counts] of Object.entries(byRoot ?? {})) {
      const notifications = Number(counts?.notification_count) || 0;
      const highlights = Number(counts?.highlight_count) || 0;
      // Counts taken before this client's receipt reached the server: read is read until a
      // newer reply comes.
      if (this.readUpTo.has(rootId) && this.readUpTo.get(rootId) === this.summary(rootId)?.latest?.event_id) continue;
      if (notifications || highlights) this.unread.set(rootId, { notifications, highlights });
    }
  }

  /** This client read thread `rootId` up to its reply `eventId` (and sends the receipt). */
  markRead(rootId, eventId) {
    this.readUpTo.set(rootId, eventId);
    this.unread.delete(rootId);
  }

  /** @returns {{notifications: number, highlights: number}} */
  unreadOf(rootId) {
    return this.unread.get(rootId) ?? { notifications: 0, highlights: 0 };
  }

  /** Mentions waiting in any thread: they count on the channel too, as mentions anywhere do. */
  unreadHighlights() {
    let total = 0;
    for (const counts of this.unread.values()) total += counts.highlights;
    return total;
  }

  /** The thread's replies known here, oldest first. */
  replies(rootId) {
    const thread = this.threads.get(rootId);
    if (!thread) return [];
    return [...thread.replies.values()].sort((a, b) => ts(a) - ts(b));
  }

  /** @returns {ThreadSummary|null} null when the event has no reply in a thread */
  summary(rootId) {
    const thread = this.threads.get(rootId);
    if (!thread) return null;
    const replies = this.replies(rootId);
    const base = thread.complete ? null : thread.base;
    const baseLatest = base?.latest && !this.redacted.has(base.latest.event_id) ? base.latest : null;
    const newer = base ? replies.filter((r) => r.event_id !== base.latest?.event_id && ts(r) > ts(base.latest)) : replies;
    const count = (base?.count ?? 0) + newer.length;
    if (count === 0) return null;
    const last = replies.at(-1) ?? null;
    const latest = baseLatest && (!last || ts(baseLatest) > ts(last)) ? baseLatest : last;
    return { rootId, count, latest };
  }

  /** The newest event of the thread (the root when it has no reply): what a new reply falls back to. */
  latestId(rootId) {
    return this.summary(rootId)?.latest?.event_id ?? rootId;
  }

  /** Every thread with a reply, the most recently active first. */
  summaries() {
    return [...this.threads.keys()]
      .map((rootId) => this.summary(rootId))
      .filter((s) => s !== null)
      .sort((a, b) => ts(b.latest) - ts(a.latest));
  }
}

/**
 * "1 reply", "12 replies".
 * @param {number} count
 */
export function replyCountText(count) {
  return `${count} ${count === 1 ? "reply" : "replies"}`;
}

/**
 * The newest event of the main timeline (thread replies left out), where the channel's own
 * read receipt goes: a thread's replies are read in the thread, with a receipt of its own.
 * @param {Array<Record<string, any>>} timeline  oldest first
 */
export function lastMainEventId(timeline) {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const event = timeline[i];
    if (!event.event_id.startsWith("~") && !threadRootOf(event)) return event.event_id;
  }
  return null;
}
