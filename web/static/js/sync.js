// The sync engine: /sync long-polling, room timelines and state, relations, catch-up after gaps.
//
// Every event is kept once, by event id, however it arrives (sync, gap fill, back-pagination, a
// retried sync after a failure): processing a response twice changes nothing, so a reconnect
// can never duplicate a message, and a `limited` timeline is filled back to the last known event
// so none is lost.

import { ConnectionError, MatrixError } from "./matrix.js";
import { ownMembershipEvent } from "./member-notices.js";
import { ThreadIndex } from "./threads.js";

const LONG_POLL_MS = 30_000;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 5_000;
const GAP_FILL_PAGES = 6;
const PAGE_SIZE = 40;

// Members are lazy-loaded: the server sends the member events of the senders we see only.
// Presence (online, idle, offline) feeds the member list's dots (presence.js); a homeserver with
// presence disabled sends none.
export const SYNC_FILTER = {
  room: {
    state: { lazy_load_members: true },
    // Thread replies counted per thread, apart from the channel's own (threads.js).
    timeline: { limit: 30, lazy_load_members: true, unread_thread_notifications: true },
  },
  presence: { types: ["m.presence"] },
};
const PAGINATION_FILTER = { lazy_load_members: true };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function isAuthError(error) {
  return error instanceof MatrixError && ["M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"].includes(error.errcode);
}

/** The id an m.room.redaction removes (top-level before room version 11, in content since). */
export function redactsOf(event) {
  return event.content?.redacts ?? event.redacts ?? null;
}

/** One joined room as this client knows it. */
export class Room {
  constructor(roomId) {
    this.roomId = roomId;
    this.membership = "join";
    /** @type {Map<string, Map<string, object>>} type → state key → event */
    this.state = new Map();
    /** Member events of senders seen in history, when the current state does not have them. */
    this.pastMembers = new Map();
    /** @type {object[]} oldest first */
    this.timeline = [];
    this.ids = new Set();
    this.prevBatch = null;
    this.atStart = false;
    this.loadingOlder = null;
    this.unread = { notifications: 0, highlights: 0 };
    this.typing = [];
    this.fullyRead = null;
    /** Local echoes of what this tab is sending: {txnId, type, content, status, eventId}. */
    this.pending = [];
    // Relations, indexed whatever order their events arrive in.
    this.edits = new Map(); // target id → [replacement events]
    this.reactions = new Map(); // target id → Map(key → Map(sender → reaction event id))
    this.reactionById = new Map(); // reaction event id → {target, key, sender}
    this.editById = new Map(); // edit event id → target id
    this.redacted = new Set();
    this.byId = new Map();
    this.threads = new ThreadIndex(); // m.thread replies and counts, by root (threads.js)
  }

  getState(type, stateKey = "") {
    return this.state.get(type)?.get(stateKey) ?? null;
  }

  stateOfType(type) {
    return [...(this.state.get(type)?.values() ?? [])];
  }

  get createType() {
    return this.getState("m.room.create")?.content?.type ?? null;
  }

  /** A Guilds role room: a space marked so at creation, or one of the older room type. */
  get isRoleRoom() {
    const create = this.getState("m.room.create")?.content ?? {};
    if (create.type === "chat.guilds.role") return true;
    return create.type === "m.space" && create["chat.guilds.role_room"] === true;
  }

  get name() {
    return this.getState("m.room.name")?.content?.name ?? "";
  }

  member(userId) {
    return this.getState("m.room.member", userId) ?? this.pastMembers.get(userId) ?? null;
  }

  displayName(userId) {
    const name = this.member(userId)?.content?.displayname;
    return typeof name === "string" && name ? name : userId.replace(/^@/, "").split(":")[0];
  }

  avatarOf(userId) {
    const url = this.member(userId)?.content?.avatar_url;
    return typeof url === "string" && url.startsWith("mxc://") ? url : null;
  }

  applyState(event) {
    if (typeof event.state_key !== "string") return;
    let byKey = this.state.get(event.type);
    if (!byKey) this.state.set(event.type, (byKey = new Map()));
    byKey.set(event.state_key, event);
  }

  /** Index what an event means for others (edits, reactions, redactions). */
  indexRelations(event) {
    this.byId.set(event.event_id, event);
    this.threads.add(event);
    const rel = event.content?.["m.relates_to"];
    if (event.unsigned?.redacted_because) this.redacted.add(event.event_id);
    if (event.type === "m.room.redaction") {
      const target = redactsOf(event);
      if (target) this.redact(target);
      return;
    }
    if (this.redacted.has(event.event_id)) return;
    if (event.type === "m.reaction" && rel?.rel_type === "m.annotation" && typeof rel.key === "string") {
      let byKey = this.reactions.get(rel.event_id);
      if (!byKey) this.reactions.set(rel.event_id, (byKey = new Map()));
      let bySender = byKey.get(rel.key);
      if (!bySender) byKey.set(rel.key, (bySender = new Map()));
      bySender.set(event.sender, event.event_id);
      this.reactionById.set(event.event_id, { target: rel.event_id, key: rel.key, sender: event.sender });
    } else if (rel?.rel_type === "m.replace" && rel.event_id && event.content?.["m.new_content"]) {
      const list = this.edits.get(rel.event_id) ?? [];
      if (!list.some((e) => e.event_id === event.event_id)) list.push(event);
      this.edits.set(rel.event_id, list);
      this.editById.set(event.event_id, rel.event_id);
    }
    // A server bundles the latest edit with the original when it pages history.
    const bundled = event.unsigned?.["m.relations"]?.["m.replace"];
    if (bundled && typeof bundled === "object" && bundled.event_id && bundled.content) {
      this.indexRelations({ ...bundled, room_id: this.roomId });
    }
  }

  redact(targetId) {
    this.redacted.add(targetId);
    this.threads.redact(targetId);
    const reaction = this.reactionById.get(targetId);
    if (reaction) {
      this.reactionById.delete(targetId);
      const bySender = this.reactions.get(reaction.target)?.get(reaction.key);
      if (bySender?.get(reaction.sender) === targetId) bySender.delete(reaction.sender);
      if (bySender && bySender.size === 0) this.reactions.get(reaction.target).delete(reaction.key);
    }
    const editTarget = this.editById.get(targetId);
    if (editTarget) {
      const list = (this.edits.get(editTarget) ?? []).filter((e) => e.event_id !== targetId);
      this.edits.set(editTarget, list);
      this.editById.delete(targetId);
    }
  }

  /** The latest valid replacement of an event (same sender as the original), or null. */
  latestEdit(event) {
    const list = (this.edits.get(event.event_id) ?? []).filter(
      (e) => e.sender === event.sender && !this.redacted.has(e.event_id),
    );
    if (list.length === 0) return null;
    return list.reduce((a, b) => ((b.origin_server_ts ?? 0) >= (a.origin_server_ts ?? 0) ? b : a));
  }

  /**
   * Add events (oldest first) at the end or, with `atStart`, before the oldest. Known ids are
   * skipped: this is what makes every path into the timeline idempotent.
   */
  addEvents(events, { prepend = false } = {}) {
    const fresh = [];
    for (const event of events) {
      if (!event || typeof event.event_id !== "string" || this.ids.has(event.event_id)) continue;
      this.ids.add(event.event_id);
      event.room_id = this.roomId;
      fresh.push(event);
      const txnId = event.unsigned?.transaction_id;
      if (txnId) this.pending = this.pending.filter((p) => p.txnId !== txnId);
      this.pending = this.pending.filter((p) => p.eventId !== event.event_id);
    }
    if (prepend) this.timeline.unshift(...fresh);
    else this.timeline.push(...fresh);
    for (const event of fresh) this.indexRelations(event);
    return fresh;
  }

  /** The newest event that a read marker can point at (not a local echo). */
  get lastEventId() {
    for (let i = this.timeline.length - 1; i >= 0; i--) {
      const event = this.timeline[i];
      if (!event.event_id.startsWith("~")) return event.event_id;
    }
    return null;
  }
}

/**
 * The engine. Listen for `update` (detail: {rooms: Set of changed room ids, state: Map room id →
 * Set of state types changed, membership: boolean, accountData?: Set of account data types changed}), `status` (detail: "connecting" | "online" |
 * "reconnecting"), `signedout` (the token was refused), `to_device` (detail: one to-device
 * event, {type, sender, content}, each dispatched once) and `timeline` (detail: Map room id →
 * the live events new in one sync batch, oldest first, after the whole batch is applied) and
 * `left` (detail: {roomId, room, event}: a joined room this client no longer is in, as it was,
 * and the user's own membership event that took them out when the batch has it) and
 * `presence` (detail: Map user id → the `m.presence` content new in one batch).
 */
export class SyncEngine extends EventTarget {
  /** @param {import("./matrix.js").MatrixClient} client */
  constructor(client, userId) {
    super();
    this.client = client;
    this.userId = userId;
    /** @type {Map<string, Room>} joined rooms */
    this.rooms = new Map();
    this.invites = new Map();
    this.accountData = new Map();
    /** @type {Map<string, object>} user id → their latest m.presence content */
    this.presence = new Map();
    this.since = null;
    this.status = "connecting";
    this.stopped = false;
    this.firstSync = null;
    this._resolveFirst = null;
    this.firstSync = new Promise((resolve) => {
      this._resolveFirst = resolve;
    });
  }

  room(roomId) {
    return this.rooms.get(roomId) ?? null;
  }

  start() {
    this._loop();
  }

  stop() {
    this.stopped = true;
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  async _loop() {
    let backoff = BACKOFF_START_MS;
    while (!this.stopped) {
      try {
        // After a failure the server is asked not to hold the request: were it back with nothing
        // new to say, a long poll would keep the "reconnecting" banner up for LONG_POLL_MS more.
        const reconnecting = this.status === "reconnecting";
        const data = await this.client.sync({
          since: this.since,
          filter: SYNC_FILTER,
          timeoutMs: this.since && !reconnecting ? LONG_POLL_MS : 0,
        });
        if (this.stopped) return;
        await this._process(data);
        // Only once everything is applied: a failure above retries the same batch, harmlessly.
        this.since = data.next_batch;
        this._setStatus("online");
        this._resolveFirst?.();
        this._resolveFirst = null;
        backoff = BACKOFF_START_MS;
      } catch (error) {
        if (this.stopped) return;
        if (isAuthError(error)) {
          this.stopped = true;
          this.dispatchEvent(new CustomEvent("signedout"));
          return;
        }
        if (!(error instanceof ConnectionError || (error instanceof MatrixError && error.status >= 429))) {
          console.warn("sync failed", error);
        }
        this._setStatus("reconnecting");
        // Jitter, so many tabs do not come back in lockstep after an outage.
        await sleep(backoff * (0.75 + Math.random() / 2));
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  async _process(data) {
    const changed = new Set();
    const stateChanged = new Map();
    let membership = false;
    const freshByRoom = new Map(); // room id → events new to us in this batch, oldest first
    const noteState = (roomId, type) => {
      if (!stateChanged.has(roomId)) stateChanged.set(roomId, new Set());
      stateChanged.get(roomId).add(type);
    };

    const accountData = new Set();
    for (const event of data.account_data?.events ?? []) {
      this.accountData.set(event.type, event.content);
      accountData.add(event.type);
    }

    const presence = new Map();
    for (const event of data.presence?.events ?? []) {
      if (event.type !== "m.presence" || typeof event.sender !== "string") continue;
      this.presence.set(event.sender, event.content ?? {});
      presence.set(event.sender, event.content ?? {});
    }

    const joined = data.rooms?.join ?? {};
    for (const [roomId, section] of Object.entries(joined)) {
      let room = this.rooms.get(roomId);
      if (!room) {
        room = new Room(roomId);
        this.rooms.set(roomId, room);
        membership = true;
      }
      if (this.invites.delete(roomId)) membership = true;
      for (const event of section.state?.events ?? []) {
        room.applyState(event);
        noteState(roomId, event.type);
      }
      const timeline = section.timeline ?? {};
      let events = timeline.events ?? [];
      if (room.timeline.length === 0) {
        if (room.prevBatch === null) room.prevBatch = timeline.prev_batch ?? null;
      } else if (timeline.limited && timeline.prev_batch) {
        const gap = await this._fillGap(room, timeline.prev_batch, events);
        // The gap is older than the `state` block (the state where the timeline starts): apply
        // its state first and the block again, so an older value never overwrites a newer one.
        for (const event of gap) {
          if (typeof event.state_key === "string") {
            room.applyState(event);
            noteState(roomId, event.type);
          }
        }
        for (const event of section.state?.events ?? []) room.applyState(event);
        events = [...gap, ...events];
      }
      for (const event of timeline.events ?? []) {
        if (typeof event.state_key === "string") {
          room.applyState(event);
          noteState(roomId, event.type);
        }
      }
      const fresh = room.addEvents(events);
      if (fresh.length > 0) {
        changed.add(roomId);
        freshByRoom.set(roomId, fresh);
      }
      for (const event of section.ephemeral?.events ?? []) {
        if (event.type === "m.typing") {
          room.typing = (event.content?.user_ids ?? []).filter((u) => u !== this.userId);
          changed.add(roomId);
        }
      }
      for (const event of section.account_data?.events ?? []) {
        if (event.type === "m.fully_read") room.fullyRead = event.content?.event_id ?? null;
      }
      const counts = section.unread_notifications;
      if (section.unread_thread_notifications) room.threads.setUnread(section.unread_thread_notifications);
      if (counts) {
        const next = {
          notifications: counts.notification_count ?? 0,
          highlights: (counts.highlight_count ?? 0) + room.threads.unreadHighlights(),
        };
        if (next.notifications !== room.unread.notifications || next.highlights !== room.unread.highlights) {
          room.unread = next;
          changed.add(roomId);
        }
      }
      if (stateChanged.has(roomId)) changed.add(roomId);
    }

    for (const [roomId, section] of Object.entries(data.rooms?.invite ?? {})) {
      if (!this.rooms.has(roomId)) {
        this.invites.set(roomId, section.invite_state?.events ?? []);
        membership = true;
      }
    }
    const left = [];
    for (const [roomId, section] of Object.entries(data.rooms?.leave ?? {})) {
      const room = this.rooms.get(roomId);
      if (room) {
        room.membership = "leave";
        // The event that took us out (a kick or ban says who and why), with the room's name.
        left.push({ roomId, room, event: ownMembershipEvent(section, this.userId) });
      }
      if (this.rooms.delete(roomId) || this.invites.delete(roomId)) {
        membership = true;
        changed.add(roomId);
      }
    }

    if (changed.size || membership || stateChanged.size || accountData.size) {
      this.dispatchEvent(
        new CustomEvent("update", { detail: { rooms: changed, state: stateChanged, membership, accountData } }),
      );
    }
    for (const detail of left) this.dispatchEvent(new CustomEvent("left", { detail }));
    if (presence.size) this.dispatchEvent(new CustomEvent("presence", { detail: presence }));
    // The batch's new timeline events, once all of it is applied (1:1 calls ring only then).
    if (freshByRoom.size) this.dispatchEvent(new CustomEvent("timeline", { detail: freshByRoom }));
    // After the rooms, so a listener sees the state the same batch brought (calls need both).
    for (const event of data.to_device?.events ?? []) {
      if (event && typeof event.type === "string") {
        this.dispatchEvent(new CustomEvent("to_device", { detail: event }));
      }
    }
  }

  /**
   * After a `limited` sync, page back from its prev_batch until an event we already hold, so the
   * messages sent while we were away all appear. Answers those events, oldest first.
   */
  async _fillGap(room, from, newer) {
    const collected = [];
    const known = new Set([...room.ids, ...newer.map((e) => e.event_id)]);
    let token = from;
    for (let page = 0; page < GAP_FILL_PAGES && token; page++) {
      const answer = await this.client.messages(room.roomId, {
        from: token,
        dir: "b",
        limit: PAGE_SIZE,
        filter: PAGINATION_FILTER,
      });
      this._rememberMembers(room, answer.state);
      let reached = false;
      for (const event of answer.chunk ?? []) {
        if (known.has(event.event_id)) {
          reached = true;
          break;
        }
        collected.push(event);
      }
      if (reached || !answer.end || (answer.chunk ?? []).length === 0) return collected.reverse();
      token = answer.end;
    }
    // Too far behind to stitch: start the timeline afresh from here; scrolling up pages back.
    room.timeline = [];
    room.ids = new Set();
    room.prevBatch = token;
    room.atStart = false;
    return collected.reverse();
  }

  _rememberMembers(room, stateEvents) {
    for (const event of stateEvents ?? []) {
      if (event.type === "m.room.member" && !room.getState("m.room.member", event.state_key)) {
        room.pastMembers.set(event.state_key, event);
      }
    }
  }

  /** Load one page of older history into a room; answers how many events were added. */
  loadOlder(roomId) {
    const room = this.rooms.get(roomId);
    if (!room || room.atStart) return Promise.resolve(0);
    if (room.loadingOlder) return room.loadingOlder;
    room.loadingOlder = (async () => {
      try {
        const answer = await this.client.messages(roomId, {
          from: room.prevBatch ?? undefined,
          dir: "b",
          limit: PAGE_SIZE,
          filter: PAGINATION_FILTER,
        });
        this._rememberMembers(room, answer.state);
        const chunk = answer.chunk ?? [];
        const added = room.addEvents([...chunk].reverse(), { prepend: true });
        if (!answer.end || chunk.length === 0) room.atStart = true;
        room.prevBatch = answer.end ?? room.prevBatch;
        this.dispatchEvent(
          new CustomEvent("update", { detail: { rooms: new Set([roomId]), state: new Map(), membership: false } }),
        );
        return added.length;
      } finally {
        room.loadingOlder = null;
      }
    })();
    return room.loadingOlder;
  }

  /** Announce a local change (a local echo, a failed send) to the views. */
  touch(roomId) {
    this.dispatchEvent(
      new CustomEvent("update", { detail: { rooms: new Set([roomId]), state: new Map(), membership: false } }),
    );
  }
}
