// One message as a line in a list (search results, pins): author, channel, time and text, the
// text as text (never HTML), optionally with words marked. Clicking it opens the message.

import { h } from "../dom.js";
import { highlightSegments } from "../search.js";

const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/**
 * @param {object} options
 * @param {string} options.testid
 * @param {string} options.eventId
 * @param {string} options.author
 * @param {string|null} [options.authorColor]
 * @param {string|null} [options.channelName]
 * @param {number} options.ts
 * @param {string} options.body
 * @param {string[]} [options.terms]  words to mark in the body
 * @param {boolean} [options.muted]  a message that can no longer be shown (its text says why)
 * @param {() => void} options.onOpen
 * @param {Node|null} [options.extra]  a control beside it (unpin)
 */
export function messageSummary({ testid, eventId, author, authorColor = null, channelName = null, ts, body, terms = [], muted = false, onOpen, extra = null }) {
  const authorEl = h("span", { class: "summary-author", "data-testid": `${testid}-author`, text: author });
  if (authorColor) authorEl.style.color = authorColor;
  const text = h("span", { class: `summary-body${muted ? " muted" : ""}`, "data-testid": `${testid}-text` });
  for (const piece of highlightSegments(body, terms)) {
    text.append(piece.hit ? h("mark", { class: "search-hit", "data-testid": "search-hit", text: piece.text }) : piece.text);
  }
  const open = h(
    "button",
    { type: "button", class: "summary-open", "data-testid": `${testid}-open`, onclick: onOpen },
    h(
      "span",
      { class: "summary-meta" },
      authorEl,
      channelName ? h("span", { class: "summary-channel muted", "data-testid": `${testid}-channel`, text: `#${channelName}` }) : null,
      ts ? h("time", { class: "summary-time muted", datetime: new Date(ts).toISOString(), text: when.format(new Date(ts)) }) : null,
    ),
    text,
  );
  return h("li", { class: "summary", "data-testid": testid, "data-event-id": eventId }, open, extra);
}
