// ICE servers for calls (group mesh and 1:1), from the homeserver's TURN endpoint.
//
// `GET /_matrix/client/v3/voip/turnServer` answers {username, password, uris, ttl} when the
// homeserver has `turn_uris` + `turn_shared_secret`, and {} when it has no TURN: then calls use
// host (and server-reflexive, if any) candidates only. The credentials are cached per client until
// shortly before their `ttl` runs out; a failure is cached briefly so a call never waits on it.

import { MatrixError } from "../matrix.js";

// Ask again this long before the credentials expire, so a call set up now still gets valid ones.
const REFRESH_MARGIN_S = 60;
// Without TURN (or after an error), ask again after this long: the admin may have added it.
const RETRY_WITHOUT_TURN_MS = 5 * 60_000;
const RETRY_AFTER_ERROR_MS = 30_000;

/** @type {WeakMap<object, {servers: RTCIceServer[], until: number, pending: Promise<RTCIceServer[]> | null}>} */
const cache = new WeakMap();

/** A page-wide override (tests, local debugging): e.g. {iceTransportPolicy: "relay"}. */
let override = {};

/**
 * Set (or, with {}, clear) a page-wide override of the RTC configuration: `iceTransportPolicy`
 * ("all" | "relay") and/or `iceServers`. Tests reach it with `import("/static/js/calls/ice.js")`.
 */
export function setIceOverride(options = {}) {
  override = { ...options };
}

/** Turn a turnServer answer into RTCIceServer entries ([] when the server has no TURN). */
export function iceServersFromAnswer(answer) {
  const uris = Array.isArray(answer?.uris) ? answer.uris.filter((u) => typeof u === "string" && u) : [];
  if (uris.length === 0) return [];
  const server = { urls: uris };
  if (typeof answer.username === "string") server.username = answer.username;
  if (typeof answer.password === "string") server.credential = answer.password;
  return [server];
}

/**
 * The ICE servers to use now, for this client's homeserver.
 * @param {import("../matrix.js").MatrixClient} client
 * @param {{force?: boolean, iceServers?: RTCIceServer[]}} [options]  `iceServers` replaces the
 *   homeserver's answer (tests); `force` skips the cache.
 * @returns {Promise<RTCIceServer[]>}
 */
export async function getIceServers(client, options = {}) {
  const given = options.iceServers ?? override.iceServers;
  if (Array.isArray(given)) return given;
  let entry = cache.get(client);
  if (!entry) cache.set(client, (entry = { servers: [], until: 0, pending: null }));
  if (!options.force && Date.now() < entry.until) return entry.servers;
  if (entry.pending) return entry.pending;
  entry.pending = (async () => {
    try {
      const answer = await client.turnServer();
      const servers = iceServersFromAnswer(answer);
      const ttl = Number(answer?.ttl);
      entry.servers = servers;
      entry.until =
        servers.length > 0 && Number.isFinite(ttl) && ttl > 0
          ? Date.now() + Math.max(ttl - REFRESH_MARGIN_S, ttl / 2) * 1000
          : Date.now() + RETRY_WITHOUT_TURN_MS;
    } catch (error) {
      // 404 / M_UNRECOGNIZED: no VoIP endpoint at all; anything else: try again soon. Either way
      // the call goes ahead with the candidates it can gather without TURN.
      const absent = error instanceof MatrixError && (error.status === 404 || error.errcode === "M_UNRECOGNIZED");
      if (!absent) console.warn("turnServer failed", error);
      entry.servers = [];
      entry.until = Date.now() + (absent ? RETRY_WITHOUT_TURN_MS : RETRY_AFTER_ERROR_MS);
    } finally {
      entry.pending = null;
    }
    return entry.servers;
  })();
  return entry.pending;
}

/**
 * A full RTCConfiguration: the ICE servers plus the transport policy ("all" unless an option or
 * the page-wide override says "relay").
 * @param {import("../matrix.js").MatrixClient} client
 * @param {{iceTransportPolicy?: RTCIceTransportPolicy, iceServers?: RTCIceServer[], force?: boolean}} [options]
 * @returns {Promise<RTCConfiguration>}
 */
export async function rtcConfiguration(client, options = {}) {
  const iceServers = await getIceServers(client, options);
  const policy = options.iceTransportPolicy ?? override.iceTransportPolicy ?? "all";
  return { iceServers, iceTransportPolicy: policy === "relay" ? "relay" : "all" };
}
