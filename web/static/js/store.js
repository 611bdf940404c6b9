// The shell's state in one place: the servers, their members, what is open. The parts of the
// shell (views/home.js and the views it composes) read it and subscribe to what they draw,
// instead of sharing one closure's variables. Pure: no DOM, no requests (tests/unit_js).

/**
 * A small observable store: named values, changed with `update` and watched with `subscribe`.
 * Every `update` tells the subscribers of the keys it names, changed in value or not: setting
 * what is open again draws it again, as a click on the open channel does.
 * @template {Record<string, any>} S
 */
export class Store {
  /** @param {S} initial */
  constructor(initial) {
    /** @type {S} */
    this.state = { ...initial };
    /** @type {Array<{fn: (changed: Set<string>) => void, keys: Set<string> | null}>} */
    this.listeners = [];
    /** @type {Set<string> | null} keys changed inside `batch`, told once at its end */
    this.pending = null;
  }

  /**
   * Set some values; subscribers are told at once (or at the end of the batch this is in).
   * @param {Partial<S>} patch
   */
  update(patch) {
    Object.assign(this.state, patch);
    this.changed(Object.keys(patch));
  }

  /**
   * Tell the subscribers that these keys changed: for values changed in place (a Map's entry).
   * @param {string[]} keys
   */
  changed(keys) {
    if (this.pending) {
      for (const key of keys) this.pending.add(key);
      return;
    }
    const changed = new Set(keys);
    // Subscribers in the order they subscribed; one that unsubscribes meanwhile is still told.
    for (const { fn, keys: watched } of [...this.listeners]) {
      if (!watched || [...watched].some((key) => changed.has(key))) fn(changed);
    }
  }

  /**
   * Run `fn`, telling the subscribers once at its end of everything it changed (a refresh that
   * also opens a server draws once, not twice).
   * @template T
   * @param {() => T} fn
   * @returns {T}
   */
  batch(fn) {
    if (this.pending) return fn();
    this.pending = new Set();
    let changed;
    try {
      return fn();
    } finally {
      changed = this.pending;
      this.pending = null;
      if (changed.size) this.changed([...changed]);
    }
  }

  /**
   * Be told when any of `keys` changes (any key at all when none is given).
   * @param {(changed: Set<string>) => void} fn
   * @param {string[]} [keys]
   * @returns {() => void}  unsubscribes
   */
  subscribe(fn, keys) {
    const entry = { fn, keys: keys ? new Set(keys) : null };
    this.listeners.push(entry);
    return () => {
      this.listeners = this.listeners.filter((e) => e !== entry);
    };
  }
}

/**
 * @typedef {object} ShellState
 * @property {Map<string, any>} servers  server id → the provisioning API's Server
 * @property {string[]} order  the servers' ids in the rail's order
 * @property {Map<string, any[]>} members  server id → its Members, once loaded
 * @property {boolean} loaded  whether the server list has been loaded once
 * @property {string|null} activeServer  the server open (null: Home)
 * @property {string|null} activeChannel  the channel open in it
 * @property {string|null} linkedEvent  a message the address names, while its channel stays open
 * @property {string|null} linkedThread  the thread open beside the channel (views/threads-view.js)
 * @property {Map<string, string>} lastChannel  server id → the channel last open in it
 * @property {{name: string|null, avatar: string|null}} me  the user's display name and avatar
 */

/** The keys that say what is open: a change draws the whole shell again. */
export const SELECTION_KEYS = ["servers", "order", "activeServer", "activeChannel", "linkedEvent"];

/** The shell's store, with the changes the shell makes as methods. */
export class ShellStore extends Store {
  constructor() {
    /** @type {ShellState} */
    const initial = {
      servers: new Map(),
      order: [],
      members: new Map(),
      loaded: false,
      activeServer: null,
      activeChannel: null,
      linkedEvent: null,
      linkedThread: null,
      lastChannel: new Map(),
      me: { name: null, avatar: null },
    };
    super(initial);
  }

  /** @returns {any|null} the open server's Server, null on Home */
  activeServer() {
    return this.state.servers.get(this.state.activeServer) ?? null;
  }

  /**
   * The server list just loaded: it replaces the old one (the Map stays the same object).
   * @param {any[]} servers  Servers, in the rail's order
   */
  setServers(servers) {
    const { servers: map } = this.state;
    map.clear();
    for (const server of servers) map.set(server.server_id, server);
    const patch = { servers: map, order: servers.map((s) => s.server_id), loaded: true };
    // The server open is gone from the list: Home.
    if (this.state.activeServer && !map.has(this.state.activeServer)) patch.activeServer = null;
    this.update(patch);
  }

  /** One server loaded again; the channel open in it stays open if it still can be. */
  putServer(server) {
    const sid = server.server_id;
    this.state.servers.set(sid, server);
    const patch = { servers: this.state.servers };
    if (!this.state.order.includes(sid)) patch.order = [...this.state.order, sid];
    if (sid === this.state.activeServer && !hasChannel(server, this.state.activeChannel)) {
      patch.activeChannel = pickChannel(this.state, server);
    }
    this.update(patch);
  }

  /** A server left, deleted or no longer visible. */
  removeServer(sid) {
    this.state.servers.delete(sid);
    this.state.members.delete(sid);
    const patch = { servers: this.state.servers, members: this.state.members, order: this.state.order.filter((x) => x !== sid) };
    if (this.state.activeServer === sid) Object.assign(patch, { activeServer: null, activeChannel: null });
    this.update(patch);
  }

  /** A server's members loaded; "members" is told when they are the open server's. */
  setMembers(sid, list) {
    this.state.members.set(sid, list);
    if (sid === this.state.activeServer) this.changed(["members"]);
  }

  /**
   * Open a server (null: Home) at the channel last open there (or its default); `eventId`, a
   * message a link named in the channel it opens; `threadId`, a thread it named there.
   */
  selectServer(sid, eventId = null, threadId = null) {
    const server = sid ? this.state.servers.get(sid) : null;
    this.update({
      linkedEvent: eventId,
      linkedThread: threadId,
      activeServer: server ? sid : null,
      activeChannel: server ? pickChannel(this.state, server) : null,
    });
  }

  /** Open a channel of the server open. */
  selectChannel(cid) {
    if (this.state.activeServer) this.state.lastChannel.set(this.state.activeServer, cid);
    this.update({ activeChannel: cid, linkedEvent: null, linkedThread: null });
  }

  /**
   * The person opened or closed a thread (null) in the channel open: a move the address
   * records. Not a selection key: the open chat already shows it.
   */
  followThread(rootId) {
    // A message a link named is no longer in the address (it is not the thread's); set without
    // telling, so the chat is not drawn again under the person's hands.
    this.state.linkedEvent = null;
    this.update({ linkedThread: rootId });
  }

  /** Leave the servers for Home (a direct conversation shows there). */
  showHome() {
    this.update({ activeServer: null, activeChannel: null });
  }

  /** The channel a server opens at next, without opening it now. */
  rememberChannel(sid, cid) {
    this.state.lastChannel.set(sid, cid);
  }

  forgetChannel(sid) {
    this.state.lastChannel.delete(sid);
  }
}

// --- reading the state (pure) ------------------------------------------------------------------

/** Whether the user has a permission in a server (the provisioning API's `me.permissions`). */
export function hasPermission(server, permission) {
  return Boolean(server?.me?.permissions?.includes(permission));
}

function hasChannel(server, cid) {
  return (server.channels ?? []).some((c) => c.channel_id === cid);
}

/**
 * The channel a server opens at: the one last open there, else its default, else its first
 * text channel, else its first.
 * @param {Pick<ShellState, "lastChannel">} state
 */
export function pickChannel(state, server) {
  const remembered = state.lastChannel.get(server.server_id);
  const visible = server.channels ?? [];
  if (remembered && hasChannel(server, remembered)) return remembered;
  if (hasChannel(server, server.default_channel_id)) return server.default_channel_id;
  return visible.find((c) => c.kind === "text")?.channel_id ?? visible[0]?.channel_id ?? null;
}

/**
 * The server a room belongs to (its space, one of its channels or categories), or null.
 * @param {Pick<ShellState, "servers">} state
 */
export function serverOfRoom(state, roomId) {
  if (state.servers.has(roomId)) return roomId;
  for (const [sid, server] of state.servers) {
    if (server.channels?.some((c) => c.channel_id === roomId)) return sid;
    if (server.categories?.some((c) => c.category_id === roomId)) return sid;
  }
  return null;
}

/**
 * The server and channel open, for the header's tools; null on Home.
 * @param {ShellState} state
 */
export function openPlace(state) {
  const server = state.servers.get(state.activeServer) ?? null;
  if (!server) return null;
  return { server, channel: server.channels?.find((c) => c.channel_id === state.activeChannel) ?? null };
}

/**
 * A member's name colour: the colour of their highest role that has one, or null.
 * @param {Pick<ShellState, "servers" | "members">} state
 */
export function roleColor(state, sid, uid) {
  const server = state.servers.get(sid);
  const member = (state.members.get(sid) ?? []).find((m) => m.user_id === uid);
  if (!server || !member) return null;
  const roles = (server.roles ?? [])
    .filter((r) => member.roles.includes(r.role_id) && /^#[0-9a-f]{6}$/i.test(r.color ?? ""))
    .sort((a, b) => b.position - a.position);
  return roles[0]?.color ?? null;
}

/** A member's shown name: the display name, else the user id's local part. */
export function memberName(member) {
  return member.display_name || member.user_id.replace(/^@/, "").split(":")[0];
}
