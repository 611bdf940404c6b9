// Pinned messages as Matrix keeps them: the room state `m.room.pinned_events`, content
// `{"pinned": [event ids]}`, the list every client (Element, Cinny, nheko) reads and writes.
//
// A pin is added at the end of the list, as Element does, so the list runs from the oldest pin to
// the newest and the panel shows it reversed (newest first, as Discord's pins). Pure: no DOM.

import { powerOf } from "./mentions.js";

export const PINNED_EVENTS = "m.room.pinned_events";

/**
 * Whether `userId` may change a room's pins, as its power levels decide it: in a channel, those
 * with manage_messages (the bridge sets the level); in a DM Guilds made (trusted_private_chat),
 * both people. `room` is a `Room` of sync.js, or anything with `getState`.
 */
export function mayPinIn(room, userId) {
  if (!room) return false;
  const levels = room.getState("m.room.power_levels")?.content;
  // Without power levels every state event is open to all (the spec's state_default of 0).
  const needed = levels ? Number(levels.events?.[PINNED_EVENTS] ?? levels.state_default ?? 50) : 0;
  return powerOf(room, userId) >= needed;
}

/**
 * The pinned event ids a state content names, in its order, without repeats or non-ids (a
 * content another client wrote may hold anything).
 * @param {any} content
 * @returns {string[]}
 */
export function pinnedIds(content) {
  const listed = Array.isArray(content?.pinned) ? content.pinned : [];
  const ids = [];
  for (const id of listed) {
    if (typeof id === "string" && id.startsWith("$") && !ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** The content with `eventId` pinned last (the newest pin); moved there if it was pinned. */
export function withPin(content, eventId) {
  return { ...(content ?? {}), pinned: [...pinnedIds(content).filter((id) => id !== eventId), eventId] };
}

/** The content with `eventId` no longer pinned; other keys another client set are kept. */
export function withoutPin(content, eventId) {
  return { ...(content ?? {}), pinned: pinnedIds(content).filter((id) => id !== eventId) };
}

/** The pins to show, newest first. */
export function newestFirst(content) {
  return pinnedIds(content).reverse();
}
