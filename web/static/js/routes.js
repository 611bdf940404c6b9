// The address of what is open: `#/server/<id>/channel/<id>[/message/<id>]`, so a channel can be
// linked, bookmarked and reloaded, and Back and Forward move between channels.
//
// In the fragment, so the web server needs no routes of its own. The invite landing page's
// older `#server=<id>` (a server just joined) is still understood. Pure: no DOM, no history.

/**
 * @typedef {object} Route
 * @property {string|null} serverId  null: Home (direct messages)
 * @property {string|null} channelId  null: the server's own choice (its default channel)
 * @property {string|null} eventId  a message linked to, in that channel
 */

/** @type {Route} */
export const HOME = Object.freeze({ serverId: null, channelId: null, eventId: null });

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
    return serverId ? { serverId, channelId: null, eventId: null } : null;
  }
  const parts = text.split("/");
  if (parts[0] !== "" || parts[1] !== "server") return null;
  const [serverPart, channelWord, channelPart, messageWord, messagePart, ...rest] = parts.slice(2);
  const serverId = decode(serverPart ?? "");
  if (!serverId || rest.length) return null;
  if (channelWord === undefined) return { serverId, channelId: null, eventId: null };
  const channelId = channelWord === "channel" ? decode(channelPart ?? "") : null;
  if (!channelId) return null;
  if (messageWord === undefined) return { serverId, channelId, eventId: null };
  const eventId = messageWord === "message" ? decode(messagePart ?? "") : null;
  return eventId ? { serverId, channelId, eventId } : null;
}

/**
 * The fragment for a route (`""` for Home): what parseRoute reads back as the same route.
 * @param {Partial<Route>} route
 */
export function formatRoute({ serverId = null, channelId = null, eventId = null }) {
  if (!serverId) return "";
  let hash = `#/server/${encodeURIComponent(serverId)}`;
  if (!channelId) return hash;
  hash += `/channel/${encodeURIComponent(channelId)}`;
  return eventId ? `${hash}/message/${encodeURIComponent(eventId)}` : hash;
}
