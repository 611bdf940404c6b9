// The provisioning API client (/_guilds/v1 on this page's origin): every management request.
//
// Requests are made by http.js, as matrix.js makes the homeserver's: the caller's Matrix access
// token in the Authorization header only, never in a URL; a `{errcode, error}` answer a thrown
// MatrixError (so describeError and `error.errcode` work as for the homeserver); a 429 waited out
// and retried a bounded number of times. A 202 (a change still under way) is followed to its end
// through its operation (docs/API.md, "Operations"). Used by the shell (views/home.js), the
// management dialogs (manage/), the invite landing page (invite.js) and channel calls
// (calls/group.js, for SFU credentials). Every route has a named method here: no other module
// names a provisioning path.

import { DEFAULT_TIMEOUT_MS, MatrixError, requestJson } from "./http.js";

export const API_PREFIX = "/_guilds/v1";
// A 202 is followed by polling its operation, backing off to this interval.
const OPERATION_POLL_MAX_MS = 2_000;
// Bounds allMembers, so a server answering `next` forever cannot loop us.
const MAX_MEMBER_PAGES = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seg = encodeURIComponent;

export class GuildsApi {
  /**
   * @param {object} options
   * @param {string|null} [options.accessToken]  the caller's own Matrix token; none for previews
   * @param {string} [options.baseUrl]  defaults to this page's origin
   * @param {typeof fetch} [options.fetch]  for tests
   */
  constructor({ accessToken = null, baseUrl = "", fetch: fetchImpl = null } = {}) {
    this.baseUrl = (baseUrl || globalThis.location?.origin || "").replace(/\/+$/, "");
    this.accessToken = accessToken;
    this._fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
  }

  /** A client for a signed-in session (see session.js). */
  static forSession(session) {
    return new GuildsApi({ accessToken: session?.accessToken ?? null });
  }

  /**
   * One request, retrying on 429. Returns the decoded JSON body (null for 204).
   * @param {string} method
   * @param {string} path  below /_guilds/v1, path parameters already encoded
   * @param {object} [options]
   * @param {object} [options.body]  sent as JSON
   * @param {Record<string, string|number|undefined|null>} [options.query]
   * @param {boolean} [options.auth]
   * @param {number} [options.timeoutMs]
   */
  async request(method, path, { body, query, auth = true, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const url = new URL(this.baseUrl + API_PREFIX + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const { status, data } = await requestJson(this._fetch, url, {
      method,
      body,
      accessToken: auth ? this.accessToken : null,
      timeoutMs,
      server: "Guilds server",
      origin: this.baseUrl || "this site",
    });
    if (status === 202 && typeof data.operation_id === "string") {
      return this.followOperation(data.operation_id);
    }
    return status === 204 ? null : data;
  }

  /**
   * A change the bridge accepted but had not finished within its answer bound (202): poll its
   * operation until it ends, then answer what the request would have answered. The change goes
   * on whether or not we wait, so there is no deadline here beyond the user leaving the page.
   * @param {string} operationId
   */
  async followOperation(operationId) {
    for (let attempt = 0; ; attempt++) {
      await sleep(Math.min(OPERATION_POLL_MAX_MS, 250 * 2 ** attempt));
      const operation = await this.request("GET", `/operations/${seg(operationId)}`);
      if (operation?.status === "done") return operation.result ?? null;
      if (operation?.status === "failed") {
        const failure = operation.error ?? {};
        throw new MatrixError(
          typeof failure.errcode === "string" ? failure.errcode : "M_UNKNOWN",
          typeof failure.error === "string" ? failure.error : "The change failed",
          { status: operation.http_status ?? 500, data: failure },
        );
      }
    }
  }

  // --- servers ------------------------------------------------------------------------------
  listServers() {
    return this.request("GET", "/servers").then((d) => d?.servers ?? []);
  }
  /** @param {{name?: string, topic?: string, icon?: string, template?: string}} [fields] */
  createServer({ name, topic, icon, template } = {}) {
    return this.request("POST", "/servers", { body: dropUndefined({ name, topic, icon, template }) });
  }
  listTemplates() {
    return this.request("GET", "/templates").then((d) => d?.templates ?? []);
  }
  getServer(sid) {
    return this.request("GET", `/servers/${seg(sid)}`);
  }
  updateServer(sid, changes) {
    return this.request("PATCH", `/servers/${seg(sid)}`, { body: dropUndefined(changes) });
  }
  deleteServer(sid) {
    return this.request("DELETE", `/servers/${seg(sid)}`);
  }
  leaveServer(sid) {
    return this.request("POST", `/servers/${seg(sid)}/leave`, { body: {} });
  }
  transferServer(sid, userId) {
    return this.request("POST", `/servers/${seg(sid)}/transfer`, { body: { user_id: userId } });
  }

  // --- channels and categories ----------------------------------------------------------------
  createChannel(sid, channel) {
    return this.request("POST", `/servers/${seg(sid)}/channels`, { body: dropUndefined(channel) });
  }
  updateChannel(sid, cid, changes) {
    return this.request("PATCH", `/servers/${seg(sid)}/channels/${seg(cid)}`, {
      body: dropUndefined(changes),
    });
  }
  deleteChannel(sid, cid) {
    return this.request("DELETE", `/servers/${seg(sid)}/channels/${seg(cid)}`);
  }
  createCategory(sid, { name }) {
    return this.request("POST", `/servers/${seg(sid)}/categories`, { body: { name } });
  }
  updateCategory(sid, cat, changes) {
    return this.request("PATCH", `/servers/${seg(sid)}/categories/${seg(cat)}`, {
      body: dropUndefined(changes),
    });
  }
  deleteCategory(sid, cat) {
    return this.request("DELETE", `/servers/${seg(sid)}/categories/${seg(cat)}`);
  }
  /**
   * Credentials for a voice or video channel's SFU room (docs/API.md, docs/CALLS.md): a
   * `GUILDS_NO_SFU` MatrixError when the bridge has no SFU and the call runs peer to peer.
   * @param {string} sid
   * @param {string} cid
   * @param {string} deviceId  the device that joins the call
   */
  channelSfu(sid, cid, deviceId) {
    return this.request("POST", `/servers/${seg(sid)}/channels/${seg(cid)}/sfu`, { body: { device_id: deviceId } });
  }

  // --- members --------------------------------------------------------------------------------
  /**
   * One page: `{members, next}`; pass `next` back as `from` for the following page.
   * @param {string} sid
   * @param {{limit?: number, from?: string}} [page]
   */
  listMembers(sid, { limit, from } = {}) {
    return this.request("GET", `/servers/${seg(sid)}/members`, { query: { limit, from } });
  }
  /** Every member, following `next`. */
  async allMembers(sid) {
    const members = [];
    let from;
    for (let page = 0; page < MAX_MEMBER_PAGES; page++) {
      const answer = await this.listMembers(sid, { limit: 200, from });
      members.push(...(answer?.members ?? []));
      from = answer?.next;
      if (!from) break;
    }
    return members;
  }
  grantRole(sid, uid, rid) {
    return this.request("PUT", `/servers/${seg(sid)}/members/${seg(uid)}/roles/${seg(rid)}`);
  }
  revokeRole(sid, uid, rid) {
    return this.request("DELETE", `/servers/${seg(sid)}/members/${seg(uid)}/roles/${seg(rid)}`);
  }
  kick(sid, uid, reason) {
    return this.request("POST", `/servers/${seg(sid)}/members/${seg(uid)}/kick`, {
      body: reason ? { reason } : {},
    });
  }
  ban(sid, uid, reason) {
    return this.request("POST", `/servers/${seg(sid)}/members/${seg(uid)}/ban`, {
      body: reason ? { reason } : {},
    });
  }
  unban(sid, uid) {
    return this.request("DELETE", `/servers/${seg(sid)}/bans/${seg(uid)}`);
  }
  /** @returns {Promise<{user_id: string, reason: string|null}[]>} */
  listBans(sid) {
    return this.request("GET", `/servers/${seg(sid)}/bans`).then((d) => d?.bans ?? []);
  }

  // --- roles ----------------------------------------------------------------------------------
  listRoles(sid) {
    return this.request("GET", `/servers/${seg(sid)}/roles`).then((d) => d?.roles ?? []);
  }
  createRole(sid, role) {
    return this.request("POST", `/servers/${seg(sid)}/roles`, { body: dropUndefined(role) });
  }
  updateRole(sid, rid, changes) {
    return this.request("PATCH", `/servers/${seg(sid)}/roles/${seg(rid)}`, {
      body: dropUndefined(changes),
    });
  }
  deleteRole(sid, rid) {
    return this.request("DELETE", `/servers/${seg(sid)}/roles/${seg(rid)}`);
  }

  // --- invites --------------------------------------------------------------------------------
  /**
   * @param {string} sid
   * @param {{maxUses?: number, expiresInS?: number}} [limits]
   */
  createInvite(sid, { maxUses, expiresInS } = {}) {
    return this.request("POST", `/servers/${seg(sid)}/invites`, {
      body: dropUndefined({ max_uses: maxUses ?? undefined, expires_in_s: expiresInS ?? undefined }),
    });
  }
  listInvites(sid) {
    return this.request("GET", `/servers/${seg(sid)}/invites`).then((d) => d?.invites ?? []);
  }
  revokeInvite(sid, code) {
    return this.request("DELETE", `/servers/${seg(sid)}/invites/${seg(code)}`);
  }
  /** Public: what the landing page shows. No token is sent. */
  previewInvite(code) {
    return this.request("GET", `/invites/${seg(code)}`, { auth: false });
  }
  /**
   * Public: the address of the server's icon on an invite's landing page, for an <img> (the
   * bridge fetches it for anyone holding a usable code; a visitor has no token for media).
   * @param {string} code
   */
  inviteIconUrl(code) {
    return `${this.baseUrl}${API_PREFIX}/invites/${seg(code)}/icon`;
  }
  redeemInvite(code) {
    return this.request("POST", `/invites/${seg(code)}/redeem`, { body: {} });
  }
}

const CODE_RE = /^[A-Za-z0-9_-]{4,64}$/;

/**
 * The invite code in what someone pasted: a bare code, or a link ending in /invite/<code>.
 * Returns null when nothing usable is there.
 */
export function inviteCodeFrom(text) {
  const value = String(text ?? "").trim();
  if (CODE_RE.test(value)) return value;
  const match = /\/invite\/([A-Za-z0-9_-]{4,64})\/?(?:[?#].*)?$/.exec(value);
  return match ? match[1] : null;
}

function dropUndefined(object) {
  return Object.fromEntries(Object.entries(object ?? {}).filter(([, v]) => v !== undefined));
}
