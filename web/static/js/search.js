// Message search through the homeserver's `POST /search` (room_events): the request body, the
// answer read into plain hits, and the matched words cut out of a message for highlighting.
//
// Pure: no DOM, no requests. The view (views/search.js) inserts every piece as text, so a
// message or a query holding markup or regex characters is shown as typed, never interpreted.

import { plainPreview, stripReplyFallback } from "./markdown.js";

/**
 * @typedef {object} SearchHit
 * @property {string} eventId  the event to open: the original message for an edit's hit
 * @property {string} roomId
 * @property {string} sender
 * @property {number} ts
 * @property {string} body  the text matched (an edit's new text)
 * @property {string|null} displayName  from the answer's profile info, when it has one
 * @property {string|null} threadId  the root of the thread the message is a reply in, if it is
 */

/** Longest accepted query, in characters: a search box, not a document. */
export const MAX_QUERY_LENGTH = 200;

/**
 * The body of one room_events search in `roomIds`, newest first (the homeserver pages it with
 * `next_batch`, a query parameter).
 * @param {{term: string, roomIds: string[]}} options
 */
export function searchRequest({ term, roomIds }) {
  return {
    search_categories: {
      room_events: {
        search_term: term,
        keys: ["content.body"],
        filter: { rooms: [...roomIds] },
        order_by: "recent",
        event_context: { before_limit: 0, after_limit: 0, include_profile: true },
      },
    },
  };
}

/** The query as it is searched: trimmed, inner runs of spaces made one, cut to the limit. */
export function normalizeQuery(query) {
  return String(query ?? "")
    .trim()
    .replace(/\s+/g, " ")
    .slice(0, MAX_QUERY_LENGTH);
}

/**
 * What an answer of `/search` holds: hits in the order given (newest first), one per message
 * (a message and its edit matching the same words are one hit), the batch to ask for more, the
 * total the server counted and the words it says it matched.
 * @param {any} answer
 * @returns {{hits: SearchHit[], nextBatch: string|null, count: number|null, highlights: string[]}}
 */
export function readSearchAnswer(answer) {
  const events = answer?.search_categories?.room_events ?? {};
  const hits = [];
  const seen = new Set();
  for (const item of Array.isArray(events.results) ? events.results : []) {
    const hit = readHit(item);
    if (!hit || seen.has(hit.eventId)) continue;
    seen.add(hit.eventId);
    hits.push(hit);
  }
  const highlights = Array.isArray(events.highlights) ? events.highlights.filter((w) => typeof w === "string") : [];
  return {
    hits,
    nextBatch: typeof events.next_batch === "string" && events.next_batch ? events.next_batch : null,
    count: Number.isInteger(events.count) ? events.count : null,
    highlights,
  };
}

/** @returns {SearchHit|null} */
function readHit(item) {
  const event = item?.result;
  if (!event || typeof event.event_id !== "string" || typeof event.room_id !== "string") return null;
  const content = event.content ?? {};
  const relation = content["m.relates_to"];
  const isEdit = relation?.rel_type === "m.replace" && typeof relation.event_id === "string";
  // An edit is found by its words, but what is opened is the message it edits.
  const shown = isEdit && typeof content["m.new_content"]?.body === "string" ? content["m.new_content"] : content;
  if (typeof shown.body !== "string") return null;
  const profile = item.context?.profile_info?.[event.sender];
  return {
    eventId: isEdit ? relation.event_id : event.event_id,
    roomId: event.room_id,
    sender: typeof event.sender === "string" ? event.sender : "",
    ts: Number.isFinite(event.origin_server_ts) ? event.origin_server_ts : 0,
    // A reply's body quotes what it answers (the fallback other clients show): not its words.
    body: relation?.["m.in_reply_to"] ? stripReplyFallback(plainPreview(shown)) : plainPreview(shown),
    displayName: typeof profile?.displayname === "string" && profile.displayname ? profile.displayname : null,
    // A thread reply is opened in its thread (an edit's hit names only the message it edits).
    threadId: relation?.rel_type === "m.thread" && typeof relation.event_id === "string" ? relation.event_id : null,
  };
}

/**
 * The words to mark in results: the query's words and those the server reports, lower-cased,
 * without repeats, longest first (so "hello" wins over "hell" where both match).
 * @param {string} query
 * @param {string[]} [highlights]
 */
export function highlightTerms(query, highlights = []) {
  const words = [...String(query ?? "").matchAll(/[\p{L}\p{N}_]+/gu)].map((m) => m[0]);
  const terms = new Set();
  for (const word of [...words, ...highlights]) {
    const term = String(word).toLowerCase();
    if (term) terms.add(term);
  }
  return [...terms].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

/**
 * `text` cut into pieces, each marked as matching a term or not; joined, they are `text`.
 * Matching ignores case and finds a term anywhere in a word, as the homeserver's prefix search
 * does. Terms are matched as text: regex characters in them mean nothing.
 * @param {string} text
 * @param {string[]} terms
 * @returns {Array<{text: string, hit: boolean}>}
 */
export function highlightSegments(text, terms) {
  const source = String(text ?? "");
  const usable = terms.filter((t) => typeof t === "string" && t.length > 0);
  if (!source || usable.length === 0) return source ? [{ text: source, hit: false }] : [];
  const pattern = new RegExp(usable.map((t) => t.replace(REGEX_SPECIAL, "\\$&")).join("|"), "giu");
  const pieces = [];
  let last = 0;
  for (const match of source.matchAll(pattern)) {
    const start = match.index ?? 0;
    if (match[0].length === 0) continue;
    if (start > last) pieces.push({ text: source.slice(last, start), hit: false });
    pieces.push({ text: match[0], hit: true });
    last = start + match[0].length;
  }
  if (last < source.length) pieces.push({ text: source.slice(last), hit: false });
  return pieces;
}
