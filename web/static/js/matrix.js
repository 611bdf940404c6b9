// The one module that talks to the homeserver: every Client-Server API request goes through here,
// and no other module names a `/_matrix/` path (eslint.config.js enforces it).
//
// Requests are made by http.js, shared with the provisioning API's client — JSON, media bytes,
// uploads with progress and goodbyes on pagehide alike: the access token in the Authorization
// header only, never in a URL; a `{errcode, error}` answer a thrown MatrixError; a 429 on a JSON
// request waited out and retried a bounded number of times.

import {
  ConnectionError,
  DEFAULT_TIMEOUT_MS,
  MatrixError,
  requestBlob,
  requestJson,
  sendKeepalive,
  uploadWithProgress,
} from "./http.js";

export { ConnectionError, MatrixError };

const CLIENT_PREFIX = "/_matrix/client/v3";
// Relations and the thread list exist only under v1.
const CLIENT_V1 = "/_matrix/client/v1";
const DELAYED_EVENTS = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

/** The server's sign-up needs steps this client cannot do (captcha, email, terms...). */
export class UnsupportedAuthError extends Error {
  constructor(flows) {
    const stages = [...new Set(flows.flatMap((flow) => flow.stages ?? []))];
    super(`This homeserver asks for sign-up steps this app cannot do: ${stages.join(", ")}`);
    this.name = "UnsupportedAuthError";
    this.stages = stages;
  }
}

// User-interactive auth stages this client completes on its own.
const SUPPORTED_STAGES = new Set(["m.login.dummy"]);

const enc = encodeURIComponent;

/** A transaction id unique to this tab: a retry with the same id is not sent twice. */
export function newTxnId() {
  const random = new Uint8Array(8);
  crypto.getRandomValues(random);
  return `g${Date.now().toString(36)}.${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class MatrixClient {
  /**
   * @param {object} options
   * @param {string} options.baseUrl  the homeserver's public base URL
   * @param {string} [options.accessToken]
   * @param {typeof fetch} [options.fetch]  for tests
   */
  constructor({ baseUrl, accessToken = null, fetch: fetchImpl = null }) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.accessToken = accessToken;
    this._fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Make one request, retrying on 429. Returns the decoded JSON body.
   * @param {string} method
   * @param {string} path  e.g. "/_matrix/client/v3/login"; path parameters must be encoded
   * @param {object} [options]
   * @param {object} [options.body]  sent as JSON
   * @param {Record<string, string>} [options.query]  never holds a token
   * @param {boolean} [options.auth]  send the access token (default: when we have one)
   * @param {number} [options.timeoutMs]
   * @param {boolean} [options.retryRateLimits]  false: a 429 is thrown to the caller
   */
  async request(
    method,
    path,
    { body, query, auth = true, timeoutMs = DEFAULT_TIMEOUT_MS, retryRateLimits = true } = {},
  ) {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      url.searchParams.set(key, value);
    }
    const { data } = await requestJson(this._fetch, url, {
      method,
      body,
      accessToken: auth ? this.accessToken : null,
      timeoutMs,
      retryRateLimits,
      origin: this.baseUrl,
    });
    return data;
  }

  /**
   * Send a request that outlives the page (http.js sendKeepalive), for a goodbye on pagehide: no
   * answer is awaited and failures are ignored — whatever it ends also ends another way
   * (a call membership's expiry, a call's failed connection).
   */
  _sendOnUnload(method, path, body) {
    sendKeepalive(this._fetch, new URL(this.baseUrl + path), { method, body, accessToken: this.accessToken });
  }

  // --- Client-Server API calls ------------------------------------------------------------

  versions() {
    return this.request("GET", "/_matrix/client/versions", { auth: false });
  }

  /**
   * `m.login.password` with a user identifier; answers {user_id, access_token, device_id}.
   * @param {string} user
   * @param {string} password
   * @param {{deviceName?: string}} [options]
   */
  login(user, password, { deviceName } = {}) {
    return this.request("POST", `${CLIENT_PREFIX}/login`, {
      auth: false,
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: deviceName,
      },
    });
  }

  /**
   * Register an account, completing user-interactive auth: the first request goes without
   * `auth`; a 401 lists the flows and a session, and we complete a flow made only of stages we
   * support (m.login.dummy). Answers {user_id, access_token, device_id}.
   * @param {string} username
   * @param {string} password
   * @param {{deviceName?: string}} [options]
   */
  async register(username, password, { deviceName } = {}) {
    const body = {
      username,
      password,
      initial_device_display_name: deviceName,
      inhibit_login: false,
    };
    const path = `${CLIENT_PREFIX}/register`;
    const query = { kind: "user" };
    let uia;
    try {
      return await this.request("POST", path, { body, query, auth: false });
    } catch (error) {
      uia = userInteractiveAuth(error);
      if (!uia) throw error;
    }
    // Each round completes one stage; a flow has a handful at most, so this is bounded.
    for (let round = 0; round < 5; round++) {
      const flow = pickFlow(uia.flows, uia.completed);
      if (!flow) throw new UnsupportedAuthError(uia.flows);
      const stage = flow.stages.find((s) => !uia.completed.includes(s));
      if (!stage) throw new MatrixError("M_UNKNOWN", "Sign-up did not complete");
      try {
        return await this.request("POST", path, {
          body: { ...body, auth: { type: stage, session: uia.session } },
          query,
          auth: false,
        });
      } catch (error) {
        const next = userInteractiveAuth(error);
        // A 401 without progress means the stage was refused: report the server's own error.
        if (!next || next.completed.length <= uia.completed.length) throw error;
        uia = next;
      }
    }
    throw new MatrixError("M_UNKNOWN", "Sign-up did not complete");
  }

  logout() {
    return this.request("POST", `${CLIENT_PREFIX}/logout`, { body: {} });
  }

  whoami() {
    return this.request("GET", `${CLIENT_PREFIX}/account/whoami`);
  }

  // --- Sync, timelines and sending (the chat client) -----------------------------------------

  /**
   * One /sync; `timeoutMs` is the long-poll time the server may hold the request.
   * @param {{since?: string|null, filter?: string|object, timeoutMs?: number, setPresence?: string}} [options]
   */
  sync({ since, filter, timeoutMs = 0, setPresence = "online" } = {}) {
    const query = { timeout: String(timeoutMs), set_presence: setPresence };
    if (since) query.since = since;
    if (filter) query.filter = typeof filter === "string" ? filter : JSON.stringify(filter);
    return this.request("GET", `${CLIENT_PREFIX}/sync`, {
      query,
      // The server holds a long poll for `timeoutMs`: give it that plus a margin.
      timeoutMs: timeoutMs + 20_000,
      retryRateLimits: false,
    });
  }

  /**
   * A page of a room's timeline: {chunk, start, end, state}.
   * @param {string} roomId
   * @param {{from?: string|null, dir?: string, limit?: number, filter?: string|object}} [options]
   */
  messages(roomId, { from, dir = "b", limit = 30, filter } = {}) {
    const query = { dir, limit: String(limit) };
    if (from) query.from = from;
    if (filter) query.filter = JSON.stringify(filter);
    return this.request("GET", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/messages`, { query });
  }

  /**
   * Send a message-like event; the txn id makes a retry idempotent. Answers {event_id}.
   * @param {string} roomId
   * @param {string} type
   * @param {object} content
   * @param {string} [txnId]
   * @param {{retryRateLimits?: boolean}} [options]  false: a 429 is thrown, for a caller that
   *   waits it out itself (the send queue)
   */
  sendEvent(roomId, type, content, txnId = newTxnId(), { retryRateLimits = true } = {}) {
    return this.request("PUT", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/send/${enc(type)}/${enc(txnId)}`, {
      body: content,
      retryRateLimits,
    });
  }

  /**
   * @param {string} roomId
   * @param {string} eventId
   * @param {{reason?: string, txnId?: string}} [options]
   */
  redact(roomId, eventId, { reason, txnId = newTxnId() } = {}) {
    return this.request("PUT", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`, {
      body: reason ? { reason } : {},
    });
  }

  joinRoom(roomIdOrAlias) {
    return this.request("POST", `${CLIENT_PREFIX}/join/${enc(roomIdOrAlias)}`, { body: {} });
  }

  sendTyping(roomId, userId, typing, timeoutMs = 6000) {
    return this.request("PUT", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/typing/${enc(userId)}`, {
      body: typing ? { typing: true, timeout: timeoutMs } : { typing: false },
    });
  }

  /** Move the read receipt and the fully-read marker to `eventId` in one request. */
  setReadMarkers(roomId, eventId) {
    return this.request("POST", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/read_markers`, {
      body: { "m.fully_read": eventId, "m.read": eventId },
    });
  }

  /**
   * @param {string} roomId
   * @param {string} eventId
   * @param {string} [type]
   * @param {{threadId?: string}} [options]  a threaded receipt: read up to `eventId` in that thread
   */
  sendReceipt(roomId, eventId, type = "m.read", { threadId } = {}) {
    return this.request("POST", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/receipt/${enc(type)}/${enc(eventId)}`, {
      body: threadId ? { thread_id: threadId } : {},
    });
  }

  /** One event of a room (with its bundled aggregations), by id. */
  getEvent(roomId, eventId) {
    return this.request("GET", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/event/${enc(eventId)}`);
  }

  /**
   * A page of the events related to `eventId` by `relType` (an `m.thread`'s replies):
   * {chunk, next_batch?}, newest first with the default `dir` "b".
   * @param {string} roomId
   * @param {string} eventId
   * @param {string} relType
   * @param {{from?: string|null, limit?: number, dir?: string}} [options]
   */
  relations(roomId, eventId, relType, { from, limit = 50, dir = "b" } = {}) {
    const query = { dir, limit: String(limit) };
    if (from) query.from = from;
    return this.request("GET", `${CLIENT_V1}/rooms/${enc(roomId)}/relations/${enc(eventId)}/${enc(relType)}`, { query });
  }

  /**
   * A page of a room's threads, the most recently active first: {chunk: root events with their
   * bundled `m.thread` summary, next_batch?}.
   * @param {string} roomId
   * @param {{from?: string|null, limit?: number, include?: "all"|"participated"}} [options]
   */
  threads(roomId, { from, limit = 25, include = "all" } = {}) {
    const query = { include, limit: String(limit) };
    if (from) query.from = from;
    return this.request("GET", `${CLIENT_V1}/rooms/${enc(roomId)}/threads`, { query });
  }

  /**
   * A request answered with bytes (authenticated media): the Blob, or a thrown MatrixError.
   * @param {string} method
   * @param {string} path
   * @param {{query?: Record<string, string>}} [options]
   */
  requestBlob(method, path, { query } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
    return requestBlob(this._fetch, url, {
      method,
      accessToken: this.accessToken,
      timeoutMs: DEFAULT_TIMEOUT_MS * 2,
      origin: this.baseUrl,
    });
  }

  getRoomState(roomId) {
    return this.request("GET", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/state`);
  }

  /**
   * Upload to the media repository with progress (http.js uploadWithProgress). Answers the
   * `mxc://` URI.
   * @param {Blob} file
   * @param {{filename?: string, onProgress?: (fraction: number) => void, signal?: AbortSignal}} options
   */
  async uploadWithProgress(file, { filename, onProgress, signal } = {}) {
    const url = new URL(`${this.baseUrl}/_matrix/media/v3/upload`);
    if (filename) url.searchParams.set("filename", filename);
    const failed = (status) => `The upload failed (${status})`;
    const { status, data } = await uploadWithProgress(url, file, {
      accessToken: this.accessToken,
      onProgress,
      signal,
      origin: this.baseUrl,
      fallback: failed,
    });
    if (typeof data?.content_uri !== "string") throw new MatrixError("M_UNKNOWN", failed(status), { status, data });
    onProgress?.(1);
    return data.content_uri;
  }

  /** The user's display name, or null when they have none. */
  async getDisplayName(userId) {
    try {
      const data = await this.request(
        "GET",
        `${CLIENT_PREFIX}/profile/${encodeURIComponent(userId)}/displayname`,
      );
      return typeof data.displayname === "string" ? data.displayname : null;
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === "M_NOT_FOUND") return null;
      throw error;
    }
  }

  // --- Search and pins (views/search.js, views/pins.js) --------------------------------------

  /**
   * One page of a server-side search (`search.js` builds the body); `nextBatch` asks for the
   * page after the one that answered it.
   * @param {object} body
   * @param {string|null} [nextBatch]
   */
  search(body, nextBatch = null) {
    return this.request("POST", `${CLIENT_PREFIX}/search`, {
      body,
      query: nextBatch ? { next_batch: nextBatch } : undefined,
    });
  }

  // --- Direct conversations (views/dms.js) ---------------------------------------------------

  /** Create a room; answers {room_id}. */
  createRoom(body) {
    return this.request("POST", `${CLIENT_PREFIX}/createRoom`, { body });
  }

  leaveRoom(roomId) {
    return this.request("POST", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/leave`, { body: {} });
  }

  /** One state event's content, or null when the room has none of that type and key. */
  async getStateEvent(roomId, type, stateKey = "") {
    try {
      return await this.request("GET", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`);
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === "M_NOT_FOUND") return null;
      throw error;
    }
  }

  /** The user's global account data of a type, or null when they have none. */
  async getAccountData(userId, type) {
    try {
      return await this.request("GET", `${CLIENT_PREFIX}/user/${enc(userId)}/account_data/${enc(type)}`);
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === "M_NOT_FOUND") return null;
      throw error;
    }
  }

  setAccountData(userId, type, content) {
    return this.request("PUT", `${CLIENT_PREFIX}/user/${enc(userId)}/account_data/${enc(type)}`, { body: content });
  }

  // --- Push rules and presence (notifications.js, presence.js) -------------------------------

  /**
   * Create or replace one of the user's push rules (scope "global").
   * @param {string} kind  "override", "room", "content", "sender" or "underride"
   * @param {string} ruleId
   * @param {{actions: any[], conditions?: object[], pattern?: string}} rule
   */
  setPushRule(kind, ruleId, rule) {
    return this.request("PUT", `${CLIENT_PREFIX}/pushrules/global/${enc(kind)}/${enc(ruleId)}`, { body: rule });
  }

  /** Delete one of the user's push rules; one already gone is no error. */
  async deletePushRule(kind, ruleId) {
    try {
      await this.request("DELETE", `${CLIENT_PREFIX}/pushrules/global/${enc(kind)}/${enc(ruleId)}`);
    } catch (error) {
      if (!(error instanceof MatrixError && error.errcode === "M_NOT_FOUND")) throw error;
    }
  }

  /** A user's presence: {presence, last_active_ago?, currently_active?, status_msg?}. */
  getPresence(userId) {
    return this.request("GET", `${CLIENT_PREFIX}/presence/${enc(userId)}/status`);
  }

  /** {displayname?, avatar_url?} of a user; empty when the profile is not found. */
  async getProfile(userId) {
    try {
      return await this.request("GET", `${CLIENT_PREFIX}/profile/${enc(userId)}`);
    } catch (error) {
      if (error instanceof MatrixError && ["M_NOT_FOUND", "M_FORBIDDEN"].includes(error.errcode)) return {};
      throw error;
    }
  }

  // --- Media (media.js) -----------------------------------------------------------------------

  /**
   * An image or file of the media repository (authenticated media) as a Blob.
   * @param {string} server  the mxc URI's server name
   * @param {string} mediaId
   * @param {{size?: number}} [options]  a square thumbnail of this size instead of the file
   */
  mediaBlob(server, mediaId, { size } = {}) {
    const kind = size ? "thumbnail" : "download";
    const query = size ? { width: String(size), height: String(size), method: "crop" } : undefined;
    return this.requestBlob("GET", `/_matrix/client/v1/media/${kind}/${enc(server)}/${enc(mediaId)}`, { query });
  }

  // --- Calls (calls/) -------------------------------------------------------------------------

  /** The homeserver's TURN credentials: {username, password, uris, ttl}. */
  turnServer() {
    return this.request("GET", `${CLIENT_PREFIX}/voip/turnServer`);
  }

  /**
   * Write a state event. With `delayMs`, a delayed state event (MSC4140): the homeserver sends
   * it that much later unless told otherwise, and answers its `delay_id`.
   * @param {string} roomId
   * @param {string} type
   * @param {string} stateKey
   * @param {object} content
   * @param {{delayMs?: number}} [options]
   */
  putState(roomId, type, stateKey, content, { delayMs } = {}) {
    const query = delayMs === undefined ? undefined : { "org.matrix.msc4140.delay": String(delayMs) };
    return this.request("PUT", statePath(roomId, type, stateKey), { body: content, query });
  }

  /**
   * Act on a delayed event (MSC4140).
   * @param {string} delayId
   * @param {"send"|"cancel"|"restart"} action
   */
  delayedEventAction(delayId, action) {
    return this.request("POST", `${DELAYED_EVENTS}/${enc(delayId)}`, { body: { action } });
  }

  /** Send to-device messages: `messages` is {user id: {device id: content}}. */
  sendToDevice(type, messages, txnId = newTxnId()) {
    return this.request("PUT", `${CLIENT_PREFIX}/sendToDevice/${enc(type)}/${enc(txnId)}`, { body: { messages } });
  }

  // Requests made while the page goes away (see _sendOnUnload): no answer, no error.

  sendEventOnUnload(roomId, type, content) {
    this._sendOnUnload("PUT", `${CLIENT_PREFIX}/rooms/${enc(roomId)}/send/${enc(type)}/${enc(newTxnId())}`, content);
  }

  putStateOnUnload(roomId, type, stateKey, content) {
    this._sendOnUnload("PUT", statePath(roomId, type, stateKey), content);
  }

  delayedEventActionOnUnload(delayId, action) {
    this._sendOnUnload("POST", `${DELAYED_EVENTS}/${enc(delayId)}`, { action });
  }
}

function statePath(roomId, type, stateKey) {
  return `${CLIENT_PREFIX}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`;
}

/** The UIA state in a 401 answer, or null when the error is not a UIA challenge. */
function userInteractiveAuth(error) {
  if (!(error instanceof MatrixError) || error.status !== 401) return null;
  const { flows, session, completed } = error.data;
  if (!Array.isArray(flows)) return null;
  return { flows, session, completed: Array.isArray(completed) ? completed : [] };
}

function pickFlow(flows, completed) {
  return flows.find((flow) =>
    (flow.stages ?? []).every((stage) => completed.includes(stage) || SUPPORTED_STAGES.has(stage)),
  );
}
