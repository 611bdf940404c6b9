// Opening a message found elsewhere (a search result, a pin) in its channel, highlighted.
//
// The address names the message (routes.js), so the shell opens it as it opens any link; what
// is added here is history: a message older than what the channel has loaded is paged back to,
// a bounded number of pages, so the chat can scroll to it and mark it. A direct conversation
// has no address: its chat is asked to mark the message itself (`revealMessage`).

import { formatRoute } from "../routes.js";

// 25 pages of sync.js's 40 events: about the last thousand events of a channel.
const MAX_PAGES = 25;

/**
 * @param {object} options
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.serverId
 * @param {string} options.roomId
 * @param {string} options.eventId
 * @param {string|null} [options.threadId]  the thread it is a reply in: opened beside the channel
 * @returns {Promise<boolean>} whether the message is in the channel's loaded history now
 */
export async function openMessage({ sync, serverId, roomId, eventId, threadId = null }) {
  const hash = formatRoute({ serverId, channelId: roomId, eventId, threadId });
  if (location.hash !== hash) {
    // A new history entry, and a popstate the shell answers by opening the route.
    location.hash = hash;
  } else {
    // Already the address: the chat marks it, only the scroll is to do again.
    document.querySelector(`[data-testid="message"][data-event-id="${CSS.escape(eventId)}"]`)?.scrollIntoView({ block: "center" });
  }
  return loadUntil(sync, roomId, eventId);
}

/**
 * A message of a direct conversation: marked by its chat (`reveal`), which scrolls to it once
 * its history is paged back to it.
 * @param {object} options
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.roomId
 * @param {string} options.eventId
 * @param {(eventId: string) => void} options.reveal
 * @returns {Promise<boolean>} whether the message is in the conversation's loaded history now
 */
export async function revealMessage({ sync, roomId, eventId, reveal }) {
  reveal(eventId);
  return loadUntil(sync, roomId, eventId);
}

/** Page back a room's history until it holds `eventId`, within the bound. */
async function loadUntil(sync, roomId, eventId) {
  const room = sync.room(roomId);
  if (!room) return false;
  for (let page = 0; page < MAX_PAGES && !room.byId.has(eventId) && !room.atStart; page++) {
    if ((await sync.loadOlder(roomId)) === 0 && room.atStart) break;
  }
  return room.byId.has(eventId);
}
