// Direct conversations: the `m.direct` model (which room is a DM with whom), finding the one
// room to use with a person, creating it, accepting and declining DM invites.
//
// `m.direct` is global account data, `{user id: [room id, ...]}`, that every Matrix client of
// the account reads and writes (Element, nheko...). It is rewritten whole, so a write merges into
// the freshest copy from the homeserver and never drops what other clients recorded.

export const DIRECT_TYPE = "m.direct";

const isUserId = (value) => typeof value === "string" && /^@[^:]+:.+$/.test(value);
const isRoomId = (value) => typeof value === "string" && value.startsWith("!");

/** `m.direct` content made safe to read: user id → unique room ids, malformed entries dropped. */
export function normalizeDirect(content) {
  const out = {};
  if (!content || typeof content !== "object" || Array.isArray(content)) return out;
  for (const [userId, rooms] of Object.entries(content)) {
    if (!isUserId(userId) || !Array.isArray(rooms)) continue;
    const unique = [...new Set(rooms.filter(isRoomId))];
    if (unique.length) out[userId] = unique;
  }
  return out;
}

/**
 * `content` with `roomId` recorded as a DM with `userId`. A room is a DM with one person: it is
 * taken out of any other person's list. Everything else in `content` is kept as it was, even
 * entries this client cannot read (another client's data is not ours to clean). Answers
 * `{content, changed}`.
 */
export function withDirectRoom(content, userId, roomId) {
  const base = content && typeof content === "object" && !Array.isArray(content) ? content : {};
  const next = {};
  let changed = false;
  for (const [other, rooms] of Object.entries(base)) {
    if (other !== userId && Array.isArray(rooms) && rooms.includes(roomId)) {
      const rest = rooms.filter((r) => r !== roomId);
      changed = true;
      if (rest.length) next[other] = rest;
      continue;
    }
    next[other] = rooms;
  }
  const mine = Array.isArray(next[userId]) ? next[userId] : [];
  if (!mine.includes(roomId)) {
    next[userId] = [...mine, roomId];
    changed = true;
  }
  return { content: next, changed };
}

/** room id → the person it is a DM with. */
export function partnersByRoom(content) {
  const map = new Map();
  for (const [userId, rooms] of Object.entries(normalizeDirect(content))) {
    for (const roomId of rooms) if (!map.has(roomId)) map.set(roomId, userId);
  }
  return map;
}

const THEIRS_RANK = { join: 3, invite: 2, unknown: 1 };

/**
 * The room to use among candidates `[{roomId, mine, theirs, lastActive}]`: `mine` is our
 * membership ("join" or "invite"), `theirs` the other person's ("join", "invite", "leave",
 * "ban", or "unknown"). A room both have joined comes first, then one they are invited to; a
 * room they left or were banned from is no DM any more. Among equals, the latest active; a room
 * we are only invited to comes after every joined one. Answers the room id, or null.
 */
export function chooseDmRoom(candidates) {
  let best = null;
  let bestKey = null;
  for (const c of candidates) {
    const theirs = THEIRS_RANK[c.theirs] ?? 0;
    if (theirs === 0 || !["join", "invite"].includes(c.mine)) continue;
    const key = [c.mine === "join" ? 1 : 0, theirs, Number(c.lastActive) || 0];
    if (bestKey === null || compareKeys(key, bestKey) > 0) {
      best = c.roomId;
      bestKey = key;
    }
  }
  return best;
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** Our own member event in an invite's stripped state: {sender, isDirect}, or null. */
export function inviteInfo(inviteState, userId) {
  const member = (inviteState ?? []).find(
    (e) => e?.type === "m.room.member" && e.state_key === userId && e.content?.membership === "invite",
  );
  if (!member) return null;
  return { sender: typeof member.sender === "string" ? member.sender : null, isDirect: member.content?.is_direct === true };
}

/**
 * The DMs of one account, over a sync engine (joined rooms and invites) and its `m.direct`.
 */
export class DirectMessages {
  /**
   * @param {import("./matrix.js").MatrixClient} client
   * @param {import("./sync.js").SyncEngine} sync
   * @param {string} userId
   */
  constructor(client, sync, userId) {
    this.client = client;
    this.sync = sync;
    this.userId = userId;
    // Writes of m.direct one after another: two quick writes must not lose one another.
    this._writes = Promise.resolve();
    this._opening = new Map(); // partner → Promise of room id
  }

  get direct() {
    return normalizeDirect(this.sync.accountData.get(DIRECT_TYPE));
  }

  /** room id → partner, for the rooms m.direct names. */
  partners() {
    return partnersByRoom(this.sync.accountData.get(DIRECT_TYPE));
  }

  /**
   * Every DM to show: joined rooms that m.direct names, and invites that are DMs (flagged
   * is_direct by the inviter, or already in m.direct). `[{roomId, userId, invite, inviter}]`.
   */
  list() {
    const partners = this.partners();
    const out = [];
    for (const [roomId, room] of this.sync.rooms) {
      const userId = partners.get(roomId);
      if (!userId || isGuildsRoom(room)) continue;
      out.push({ roomId, userId, invite: false, room });
    }
    for (const [roomId, state] of this.sync.invites) {
      const info = inviteInfo(state, this.userId);
      if (!info) continue;
      const userId = partners.get(roomId) ?? (info.isDirect ? info.sender : null);
      if (!userId) continue;
      out.push({ roomId, userId, invite: true, inviter: info.sender, state });
    }
    return out;
  }

  /** The partner of a DM room, or null when the room is no DM. */
  partnerOf(roomId) {
    return this.list().find((d) => d.roomId === roomId)?.userId ?? null;
  }

  /** Record `roomId` as a DM with `partner` in our m.direct (merged into the server's copy). */
  markDirect(partner, roomId) {
    const write = this._writes.then(async () => {
      const fresh = await this.client.getAccountData(this.userId, DIRECT_TYPE);
      const { content, changed } = withDirectRoom(fresh ?? {}, partner, roomId);
      // Shown at once; the sync brings the same content back a moment later.
      this.sync.accountData.set(DIRECT_TYPE, content);
      if (changed) await this.client.setAccountData(this.userId, DIRECT_TYPE, content);
    });
    this._writes = write.catch(() => {});
    return write;
  }

  /**
   * The room to talk to `partner` in: an existing DM (see chooseDmRoom; an invite from them is
   * accepted), else a new room created with is_direct and them invited. Answers the room id.
   */
  open(partner) {
    if (partner === this.userId) return Promise.reject(new Error("That is you."));
    // Two clicks on "Message" make one room.
    let pending = this._opening.get(partner);
    if (!pending) {
      pending = this._open(partner).finally(() => this._opening.delete(partner));
      this._opening.set(partner, pending);
    }
    return pending;
  }

  async _open(partner) {
    const existing = await this.find(partner);
    if (existing) {
      if (!this.sync.rooms.has(existing)) await this.accept(existing, partner);
      return existing;
    }
    const { room_id: roomId } = await this.client.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [partner],
    });
    await this.markDirect(partner, roomId);
    return roomId;
  }

  /** An existing DM room with `partner` (see chooseDmRoom), or null. */
  async find(partner) {
    const fromDirect = new Set(this.direct[partner] ?? []);
    const candidates = [];
    for (const roomId of fromDirect) {
      const room = this.sync.rooms.get(roomId);
      if (room && !isGuildsRoom(room)) {
        candidates.push({ roomId, mine: "join", theirs: await this._membershipOf(room, partner), lastActive: lastActive(room) });
      }
    }
    for (const d of this.list()) {
      if (d.invite && d.userId === partner) candidates.push({ roomId: d.roomId, mine: "invite", theirs: "join", lastActive: 0 });
    }
    return chooseDmRoom(candidates);
  }

  async _membershipOf(room, userId) {
    const known = room.getState("m.room.member", userId)?.content?.membership;
    if (typeof known === "string") return known;
    // Members are lazy-loaded: ask the homeserver for this one.
    try {
      const content = await this.client.getStateEvent(room.roomId, "m.room.member", userId);
      return typeof content?.membership === "string" ? content.membership : "leave";
    } catch {
      return "unknown";
    }
  }

  /** Join a DM we are invited to and record it in our m.direct. */
  async accept(roomId, partner = null) {
    const info = inviteInfo(this.sync.invites.get(roomId), this.userId);
    const other = partner ?? this.partners().get(roomId) ?? info?.sender ?? null;
    await this.client.joinRoom(roomId);
    if (other) await this.markDirect(other, roomId);
  }

  async decline(roomId) {
    await this.client.leaveRoom(roomId);
    this.sync.invites.delete(roomId);
  }
}

/** A Guilds server, channel or role room is never a DM, whatever m.direct says. */
function isGuildsRoom(room) {
  const type = room.createType;
  if (type === "m.space" || (typeof type === "string" && type.startsWith("chat.guilds."))) return true;
  for (const stateType of room.state.keys()) if (stateType.startsWith("chat.guilds.")) return true;
  return false;
}

function lastActive(room) {
  for (let i = room.timeline.length - 1; i >= 0; i--) {
    const ts = room.timeline[i].origin_server_ts;
    if (Number.isFinite(ts)) return ts;
  }
  return 0;
}
