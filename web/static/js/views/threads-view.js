// Threads in a channel's chat: the side panel (one thread, or the channel's thread list), the
// summary under a thread's root in the timeline, and the header button that lists the threads.
// The chat view (chat.js) owns the timeline and the send queue and calls in here.
//
// The thread open is part of the address (routes.js): when the person opens or closes one, a
// bubbling `threadchange` event (detail: the root id, or null) tells the shell to write it; a
// link or Back and Forward open one through `follow`, which says nothing back.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { canBeThreadRoot, replyCountText } from "../threads.js";
import { createThreadList, previewText } from "./thread-list.js";
import { createThreadPanel } from "./thread-panel.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {() => import("../sync.js").Room|null} options.room
 * @param {string} options.userId
 * @param {HTMLElement} options.host  the chat's element: the panel goes in beside the timeline
 * @param {(event: object) => HTMLElement} options.renderBody
 * @param {(userId: string) => string|null} options.roleColor
 * @param {(type: string, content: object) => import("../send-queue.js").OutgoingMessage|null} options.send
 * @param {(message: import("../send-queue.js").OutgoingMessage) => void} options.retry
 * @param {() => string|null} options.readOnly  why nothing can be sent here, when nothing can
 * @param {(() => import("./mention-autocomplete.js").MentionSources)|null} [options.mentions]  the
 *   channel's @ autocomplete sources, for the thread composer
 */
export function createThreads({ client, room, userId, host, renderBody, roleColor, send, retry, readOnly, mentions = null }) {
  /** @typedef {{el: HTMLElement, render: () => void, focus: () => void, rootId?: string, linkedId?: string|null, onFocus?: () => void}} Side */
  /** @type {Side|null} */
  let side = null;

  /**
   * @param {Side|null} next
   * @param {{quiet?: boolean}} [how]  quiet: the address asked for it, nothing to write back
   */
  function show(next, { quiet = false } = {}) {
    const before = side?.rootId ?? null;
    // The timeline narrows or widens: whoever was reading the newest messages still sees them.
    const timeline = host.querySelector(".timeline");
    const atBottom = timeline && timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 48;
    side?.el.remove();
    side = next;
    host.classList.toggle("with-side", Boolean(next));
    listButton.setAttribute("aria-pressed", String(Boolean(next && !next.rootId)));
    if (next) host.append(next.el);
    if (atBottom) timeline.scrollTop = timeline.scrollHeight;
    const after = next?.rootId ?? null;
    if (!quiet && after !== before) host.dispatchEvent(new CustomEvent("threadchange", { bubbles: true, detail: after }));
    if (!next) return;
    next.render();
    next.focus();
  }

  /**
   * @param {string} rootId
   * @param {{fromList?: boolean, linkedId?: string|null, quiet?: boolean}} [how]
   */
  function open(rootId, { fromList = false, linkedId = null, quiet = false } = {}) {
    show(
      createThreadPanel({
        client,
        room,
        rootId,
        userId,
        renderBody,
        roleColor,
        send,
        retry,
        readOnly: readOnly(),
        mentions,
        onClose: () => show(null),
        onBack: fromList ? openList : null,
        linkedId,
      }),
      { quiet },
    );
  }

  function openList() {
    show(createThreadList({ client, room, onOpen: (rootId) => open(rootId, { fromList: true }), onClose: () => show(null) }));
  }

  const listButton = h(
    "button",
    {
      type: "button",
      class: "icon-button thread-list-toggle",
      "data-testid": "threads-button",
      title: "Threads",
      "aria-label": "Threads",
      "aria-pressed": "false",
      onclick: () => (side && !side.rootId ? show(null) : openList()),
    },
    icon("messages-square"),
  );

  /** Under a root in the timeline: how many replies, the latest, and a way in. Null without replies. */
  function summaryNode(event) {
    const r = room();
    const summary = r?.threads.summary(event.event_id);
    if (!summary) return null;
    const latest = summary.latest;
    const unread = r.threads.unreadOf(event.event_id).notifications > 0;
    return h(
      "button",
      {
        type: "button",
        class: `thread-summary${unread ? " unread" : ""}`,
        "data-unread": String(unread),
        "data-testid": "thread-summary",
        "aria-label": `Open thread: ${replyCountText(summary.count)}`,
        onclick: () => open(event.event_id),
      },
      icon("messages-square", { size: 16 }),
      h("span", { class: "thread-summary-count", "data-testid": "thread-summary-count", text: replyCountText(summary.count) }),
      latest
        ? h("span", { class: "thread-summary-latest muted", "data-testid": "thread-summary-latest" },
          h("strong", { text: r.displayName(latest.sender) }), ` ${previewText(r, latest)}`)
        : null,
    );
  }

  /** What the summary shows, for the timeline's "did this message change" check. */
  function signature(eventId) {
    const summary = room()?.threads.summary(eventId);
    const unread = room()?.threads.unreadOf(eventId).notifications ?? 0;
    return summary ? `${summary.count}:${summary.latest?.event_id ?? ""}:${unread}` : "";
  }

  return {
    listButton,
    summaryNode,
    signature,
    open,
    /** Whether a thread may start here, or be opened, from the message's menu. */
    canOpen: (event) => canBeThreadRoot(event),
    hasThread: (eventId) => Boolean(room()?.threads.summary(eventId)),
    render: () => side?.render(),
    onFocus: () => side?.onFocus?.(),
    close: () => show(null),
    /**
     * Show what an address names: thread `rootId` with `eventId` of it marked, or no thread.
     * @param {string|null} rootId
     * @param {string|null} [eventId]
     */
    follow(rootId, eventId = null) {
      if (!rootId) {
        if (side?.rootId) show(null, { quiet: true });
        return;
      }
      if (side?.rootId === rootId && side.linkedId === eventId) return;
      open(rootId, { linkedId: eventId, quiet: true });
    },
  };
}
