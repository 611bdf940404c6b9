// A chat's timeline: which events show (messages, local echoes, call and member notices), the
// lines grouped by author and drawn again only when they change, the channel's or DM's start,
// the scroll kept where the person reads, history loaded on scrolling up, read markers moved.

import { CALL_NOTICE_TYPES, callNotice } from "../calls/notices.js";
import { h } from "../dom.js";
import { channelIcon } from "../icons.js";
import { MEMBER_EVENT, memberNotice } from "../member-notices.js";
import { lastMainEventId, threadRootOf } from "../threads.js";
import { memberNoticeNode } from "./member-notice.js";

const GROUP_GAP_MS = 7 * 60 * 1000;
const TOP_LOAD_PX = 300;
const MESSAGE_TYPES = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);

/**
 * @param {import("./chat.js").ChatContext} ctx
 * @param {object} parts
 * @param {ReturnType<typeof import("./message-view.js").createMessageView>} parts.messages  draws a line
 * @param {() => void} parts.onRendered  after each drawing (the typing line, the thread panel)
 */
export function createTimeline(ctx, { messages, onRendered }) {
  const { client, sync, userId, roomId, channel, label, ui } = ctx;
  const nodes = new Map(); // key → {signature, node}
  let lastMarked = null;
  let linkedShown = false; // the message a link named was scrolled to

  const start = h("div", { class: "timeline-start", "data-testid": "timeline-start" });
  const loader = h("div", { class: "timeline-loader", "data-testid": "history-loading", text: "Loading older messages…" });
  loader.hidden = true;
  const list = h("ol", { class: "messages", "data-testid": "messages" });
  const el = h("div", { class: "timeline", "data-testid": "timeline", tabindex: "-1" }, start, loader, list);

  /** @returns {import("./message-view.js").TimelineItem[]} */
  function visibleItems() {
    const r = ctx.room();
    if (!r) return [];
    const items = [];
    for (const event of r.timeline) {
      if (CALL_NOTICE_TYPES.has(event.type)) {
        // A 1:1 call's end (or a missed call) is a small system line.
        const notice = callNotice(r, event, userId);
        if (notice) items.push({ key: event.event_id, event, notice });
        continue;
      }
      if (event.type === MEMBER_EVENT) {
        // Joins, leaves, kicks and bans: a small system line (member-notices.js).
        const notice = memberNotice(event);
        if (notice) items.push({ key: event.event_id, event, notice, node: () => memberNoticeNode(event, notice) });
        continue;
      }
      if (!MESSAGE_TYPES.has(event.type)) continue;
      if (r.redacted.has(event.event_id) || event.unsigned?.redacted_because) continue;
      const rel = event.content?.["m.relates_to"];
      if (rel?.rel_type === "m.replace") continue;
      // A thread's replies show in its panel; the root shows their count (views/threads-view.js).
      if (threadRootOf(event)) continue;
      items.push({ key: event.event_id, event });
    }
    for (const echo of r.pending) {
      if (echo.eventId && r.ids.has(echo.eventId)) continue;
      items.push({
        key: `echo:${echo.txnId}`,
        echo,
        event: { event_id: `~${echo.txnId}`, type: echo.type, sender: userId, origin_server_ts: echo.ts, content: echo.content },
      });
    }
    return items;
  }

  function render() {
    if (ctx.destroyed) return;
    const r = ctx.room();
    const before = {
      top: el.scrollTop,
      fromBottom: el.scrollHeight - el.scrollTop,
      atBottom: el.scrollHeight - el.scrollTop - el.clientHeight < 48,
      firstKey: list.firstElementChild?.dataset.key ?? null,
    };
    drawLines();
    drawStart(r);
    const firstKey = list.firstElementChild?.dataset.key ?? null;
    if (before.atBottom) {
      el.scrollTop = el.scrollHeight;
    } else if (firstKey !== before.firstKey) {
      // Older messages went in above: keep what the person was reading where it was.
      el.scrollTop = el.scrollHeight - before.fromBottom;
    } else {
      el.scrollTop = before.top;
    }
    const linked = ui.state.linked;
    if (linked && !linkedShown) {
      const node = nodes.get(linked)?.node;
      if (node) {
        node.scrollIntoView({ block: "center" });
        linkedShown = true;
      }
    }
    markRead();
    onRendered();
    queueMicrotask(fillViewport);
  }

  function drawLines() {
    const seen = new Set();
    const children = [];
    let prev = null;
    for (const item of visibleItems()) {
      const grouped =
        prev !== null &&
        !prev.notice &&
        prev.event.sender === item.event.sender &&
        item.event.origin_server_ts - prev.event.origin_server_ts < GROUP_GAP_MS &&
        !item.event.content?.["m.relates_to"]?.["m.in_reply_to"];
      const sig = item.notice ? `notice|${item.notice}` : messages.signature(item, grouped);
      let entry = nodes.get(item.key);
      if (!entry || entry.signature !== sig) {
        entry = { signature: sig, node: item.node?.() ?? (item.notice ? messages.notice(item) : messages.message(item, grouped)) };
        entry.node.dataset.key = item.key;
        nodes.set(item.key, entry);
      }
      seen.add(item.key);
      children.push(entry.node);
      prev = item;
    }
    for (const key of [...nodes.keys()]) if (!seen.has(key)) nodes.delete(key);
    // Keep nodes that did not change in place (an open emoji picker or focus survives).
    let cursor = list.firstElementChild;
    for (const child of children) {
      if (cursor === child) {
        cursor = cursor.nextElementSibling;
      } else {
        list.insertBefore(child, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** The channel's (or DM's) beginning, once the history is loaded back to it. */
  function drawStart(r) {
    start.replaceChildren();
    if (r?.atStart && channel.kind === "dm") {
      start.append(
        h("div", { class: "channel-hero", "aria-hidden": "true", text: "@" }),
        h("h2", { text: channel.name }),
        h("p", { class: "muted", text: `This is the beginning of your direct message history with ${label}.` }),
      );
    } else if (r?.atStart) {
      start.append(
        h("div", { class: "channel-hero", "aria-hidden": "true" }, channelIcon(channel, { size: 40, className: "channel-hero-icon" })),
        h("h2", { text: `Welcome to #${channel.name}!` }),
        h("p", { class: "muted", text: `This is the start of the #${channel.name} channel.` }),
      );
    }
    start.hidden = !r?.atStart;
  }

  /** Move the read markers to the newest event when it is on screen and the window has focus. */
  function markRead() {
    const r = ctx.room();
    const last = lastMainEventId(r?.timeline ?? []);
    if (!last || last === lastMarked || !document.hasFocus() || document.hidden) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (!atBottom) return;
    lastMarked = last;
    r.unread = { notifications: 0, highlights: 0 };
    client.setReadMarkers(roomId, last).catch((error) => {
      lastMarked = null;
      console.warn("read markers failed", error);
    });
    el.dispatchEvent(new CustomEvent("read", { bubbles: true, detail: roomId }));
  }

  async function loadOlder() {
    const r = ctx.room();
    if (!r || r.atStart || r.loadingOlder) return;
    loader.hidden = false;
    try {
      await sync.loadOlder(roomId);
    } catch (error) {
      console.warn("history failed to load", error);
    } finally {
      loader.hidden = true;
    }
  }

  /** Whether the timeline is on screen with a size: before it is laid out (not yet attached,
   * or hidden), every measure is 0 and "near the top" would page back the whole history. */
  function laidOut() {
    return el.isConnected && el.clientHeight > 0;
  }

  /** Load history until the timeline fills the view (or the room's start is reached). */
  function fillViewport() {
    const r = ctx.room();
    if (ctx.destroyed || !r || r.atStart || r.loadingOlder || !laidOut()) return;
    if (el.scrollHeight <= el.clientHeight + TOP_LOAD_PX) loadOlder();
  }

  el.addEventListener("scroll", () => {
    if (laidOut() && el.scrollTop < TOP_LOAD_PX) loadOlder();
    markRead();
  });
  // Once it gets a size (attached, shown, window resized), fill it if it is not full yet.
  const resizes = new ResizeObserver(() => fillViewport());
  resizes.observe(el);

  return {
    el,
    render,
    markRead,
    /** Scroll a message of the timeline into the middle of the view. */
    scrollTo: (eventId) => nodes.get(eventId)?.node.scrollIntoView({ block: "center" }),
    /** Highlight a message a link named, and scroll to it (when it is in the loaded history). */
    reveal(eventId) {
      const old = ui.state.linked;
      if (old !== eventId) {
        ui.update({ linked: eventId });
        linkedShown = false;
        for (const key of [old, eventId]) nodes.delete(key);
      }
      render();
    },
    destroy: () => resizes.disconnect(),
  };
}
