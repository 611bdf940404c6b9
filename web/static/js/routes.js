// The address of what is open: `#/server/<id>/channel/<id>[/thread/<root id>][/message/<id>]`,
// so a channel, a thread of it, or a message (in the channel or in the thread) can be linked,
// bookmarked and reloaded, and Back and Forward move between them.
//
// In the fragment, so the web server needs no routes of its own. The invite landing page's
// older `#server=<id>` (a server just joined) is still understood. Pure: no DOM, no history.

/**
 * @typedef {object} Route
 * @property {string|null} serverId  null: Home (direct messages)
 * @property {string|null} channelId  null: the server's own choice (its default channel)
 * @property {string|null} eventId  a message linked to, in that channel (or in that thread)
 * @property {string|null} threadId  the root of a thread open beside the channel
 */

/** @type {Route} */
export const HOME = Object.freeze({ serverId: null, channelId: null, eventId: null, threadId: null });

function decode(part) {
  try {
    const value = decodeURIComponent(part);
    return value === "" ? null : value;
  } catch {
    return null;
  }
}

/**
 * The route a location's fragment names; HOME for none, null for one this app cannot read.
 * @param {string} hash  `location.hash`, with or without its `#`
 * @returns {Route|null}
 */
export function parseRoute(hash) {
  const text = String(hash ?? "").replace(/^#/, "");
  if (text === "" || text === "/") return HOME;
  const invited = /^server=([^&/]+)$/.exec(text);
  if (invited) {
    const serverId = decode(invited[1]);
    return serverId ? { ...HOME, serverId } : null;
  }
  const parts = text.split("/");
  if (parts[0] !== "" || parts[1] !== "server") return null;
  const [serverPart, ...rest] = parts.slice(2);
  const serverId = decode(serverPart ?? "");
  if (!serverId) return null;
  /** @type {Route} */
  const route = { ...HOME, serverId };
  // After the server: named parts, each once and in this order (a message last).
  const order = ["channel", "thread", "message"];
  const key = { channel: "channelId", thread: "threadId", message: "eventId" };
  let next = 0;
  for (let i = 0; i < rest.length; i += 2) {
    const at = order.indexOf(rest[i], next);
    const value = decode(rest[i + 1] ?? "");
    if (at === -1 || !value) return null;
    route[key[order[at]]] = value;
    next = at + 1;
  }
  // A thread or a message is always in a channel.
  if (!route.channelId && (route.threadId || route.eventId)) return null;
  return route;
}

/**
 * The fragment for a route (`""` for Home): what parseRoute reads back as the same route.
 * @param {Partial<Route>} route
 */
export function formatRoute({ serverId = null, channelId = null, eventId = null, threadId = null }) {
  if (!serverId) return "";
  let hash = `#/server/${encodeURIComponent(serverId)}`;
  if (!channelId) return hash;
  hash += `/channel/${encodeURIComponent(channelId)}`;
  if (threadId) hash += `/thread/${encodeURIComponent(threadId)}`;
  return eventId ? `${hash}/message/${encodeURIComponent(eventId)}` : hash;
}
