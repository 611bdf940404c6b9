// One thread beside the channel (as Discord and Element show it): its root, its replies — the
// whole of them fetched from the thread's `/relations`, then kept current by the sync — and a
// composer whose messages go out through the channel's send queue as `m.thread` replies, with
// the channel's @ autocomplete and `m.mentions` (views/mention-autocomplete.js).

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { messageContent } from "../markdown.js";
import { mentionsReader } from "../mentions.js";
import { THREAD_REL, replyCountText, threadReplyContent } from "../threads.js";
import { attachMentionAutocomplete } from "./mention-autocomplete.js";

// Pages of 50 replies; past this many the thread shows what it has and counts on the server's total.
const MAX_REPLY_PAGES = 20;
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** As the channel's timeline writes it (chat.js): "Today at 14:05", else the date. */
function formatTime(ts) {
  const date = new Date(ts);
  return date.toDateString() === new Date().toDateString() ? `Today at ${timeFormat.format(date)}` : dateFormat.format(date);
}

/**
 * Fetch a thread's root (when it is not loaded) and every reply into the room's index.
 * @param {import("../matrix.js").MatrixClient} client
 * @param {import("../sync.js").Room} room
 * @param {string} rootId
 */
export async function loadThread(client, room, rootId) {
  if (!room.byId.has(rootId)) room.indexRelations({ ...(await client.getEvent(room.roomId, rootId)), room_id: room.roomId });
  const replies = [];
  let from = null;
  for (let page = 0; page < MAX_REPLY_PAGES; page++) {
    const answer = await client.relations(room.roomId, rootId, THREAD_REL, { from });
    for (const event of answer.chunk ?? []) {
      event.room_id = room.roomId;
      replies.push(event);
      // Into the room's index too: edits, reactions and replies to these resolve.
      room.indexRelations(event);
    }
    from = answer.next_batch ?? null;
    if (!from) {
      room.threads.setComplete(rootId, replies);
      return;
    }
  }
}

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {() => import("../sync.js").Room|null} options.room
 * @param {string} options.rootId
 * @param {string} options.userId
 * @param {(event: object) => HTMLElement} options.renderBody  the channel's own message body
 * @param {(userId: string) => string|null} options.roleColor
 * @param {(type: string, content: object) => import("../send-queue.js").OutgoingMessage|null} options.send
 * @param {(message: import("../send-queue.js").OutgoingMessage) => void} options.retry
 * @param {string|null} options.readOnly  why nothing can be sent, when nothing can
 * @param {() => void} options.onClose
 * @param {(() => void)|null} [options.onBack]  back to the thread list, when it was opened from there
 * @param {(() => import("./mention-autocomplete.js").MentionSources)|null} [options.mentions]  whom
 *   the @ autocomplete offers (the channel's); without it, replies mention no one
 * @param {string|null} [options.linkedId]  a message of the thread a link named: marked, and
 *   scrolled to once it is loaded
 */
export function createThreadPanel({ client, room, rootId, userId, renderBody, roleColor, send, retry, readOnly, onClose, onBack = null, mentions = null, linkedId = null }) {
  /** @type {import("../send-queue.js").OutgoingMessage[]} what this panel sent, until the sync has it */
  let pending = [];
  let lastSignature = null;
  let lastReceipt = null;
  let loadError = null;
  let loading = true;
  let linkedShown = false;

  const status = h("p", { class: "thread-status muted", "data-testid": "thread-status", role: "status" });
  const list = h("ol", { class: "thread-replies", "data-testid": "thread-replies" });
  const rootBox = h("div", { class: "thread-root", "data-testid": "thread-root" });
  const countLine = h("div", { class: "thread-count", "data-testid": "thread-count" });
  const error = h("p", { class: "composer-error", role: "alert", "data-testid": "thread-error" });
  error.hidden = true;
  const input = h("textarea", {
    class: "composer-input",
    "data-testid": "thread-composer",
    rows: "1",
    maxlength: "4000",
    placeholder: readOnly ?? "Reply in thread",
    "aria-label": "Reply in thread",
  });
  if (readOnly) input.disabled = true;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      onClose();
    }
  });
  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  });
  const form = h("form", { class: "composer thread-composer-form", onsubmit: (e) => e.preventDefault() }, error, h("div", { class: "composer-row" }, input));
  // Its keys are seen before the input's own: Enter picks a mention rather than sending.
  const mentionInput = mentions ? attachMentionAutocomplete({ client, input, form, userId, sources: mentions }) : null;
  const scroller = h("div", { class: "thread-scroller" }, rootBox, countLine, status, list);
  scroller.addEventListener("scroll", () => markRead());

  const headerButton = (label, name, testid, onclick) =>
    h("button", { type: "button", class: "side-panel-button", title: label, "aria-label": label, "data-testid": testid, onclick }, icon(name, { size: 18 }));
  const el = h(
    "aside",
    { class: "side-panel thread-panel", "data-testid": "thread-panel", "data-root-id": rootId, "aria-label": "Thread" },
    h(
      "header",
      { class: "side-panel-header" },
      onBack ? headerButton("Back to threads", "arrow-left", "thread-back", onBack) : null,
      h("span", { class: "side-panel-icon", "aria-hidden": "true" }, icon("messages-square", { size: 18 })),
      h("h2", { class: "side-panel-title", text: "Thread" }),
      headerButton("Close thread", "x", "thread-close", onClose),
    ),
    scroller,
    form,
  );

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  function submit() {
    const r = room();
    const text = input.value.trim();
    if (!text || !r) return;
    // No one is mentioned for the reply fallback: it is not a reply to that message's sender.
    const typed = mentionInput ? mentionInput.content(text) : messageContent(text);
    const content = threadReplyContent(typed, rootId, r.threads.latestId(rootId));
    mentionInput?.reset();
    input.value = "";
    input.style.height = "auto";
    const message = send("m.room.message", content);
    if (message) pending.push(message);
    render();
  }

  function author(r, sender) {
    const name = h("span", { class: "author", "data-testid": "message-author", text: r.displayName(sender) });
    const color = roleColor(sender);
    if (color) name.style.color = color;
    return name;
  }

  function messageNode(r, event, echo = null) {
    const body = renderBody(event);
    const main = h(
      "div",
      { class: "message-main" },
      h(
        "header",
        { class: "message-header" },
        author(r, event.sender),
        h("time", { class: "timestamp", datetime: new Date(event.origin_server_ts).toISOString(), text: formatTime(event.origin_server_ts) }),
      ),
      body,
    );
    if (echo?.status === "failed") {
      main.append(
        h("p", { class: "send-failed" }, "Not sent. ",
          h("button", { type: "button", class: "link-button", "data-testid": "retry-send", text: "Retry", onclick: () => retry(echo) }),
        ),
      );
    }
    const linked = !echo && linkedId !== null && event.event_id === linkedId;
    const mentioned = !echo && mentionsReader(r, event, userId);
    return h(
      "li",
      {
        class: `message${echo ? ` pending ${echo.status}` : ""}${linked ? " linked" : ""}${mentioned ? " mentioned" : ""}`,
        "data-testid": "thread-message",
        "data-event-id": echo ? "" : event.event_id,
        "data-sender": event.sender,
      },
      avatar(client, { mxc: r.avatarOf(event.sender), name: r.displayName(event.sender), id: event.sender, className: "avatar message-avatar" }),
      main,
    );
  }

  /** Move this thread's read receipt to its newest reply, when it is on screen and looked at. */
  function markRead() {
    const r = room();
    const latest = r?.threads.summary(rootId)?.latest?.event_id;
    if (!latest || latest === lastReceipt || !el.isConnected || !document.hasFocus() || document.hidden) return;
    if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight > 48) return;
    lastReceipt = latest;
    r.threads.markRead(rootId, latest); // the sync says so too, a moment later
    client.sendReceipt(r.roomId, latest, "m.read", { threadId: rootId }).catch((e) => {
      lastReceipt = null;
      if (r.threads.readUpTo.get(rootId) === latest) r.threads.readUpTo.delete(rootId); // the server's count stands
      console.warn("thread receipt failed", e);
    });
  }

  function render() {
    const r = room();
    if (!r) return;
    const replies = r.threads.replies(rootId).filter((e) => !r.redacted.has(e.event_id));
    const ids = new Set(replies.map((e) => e.event_id));
    // A reply is ours once the sync has it: by its event id, or by our transaction id, which the
    // sync can bring before the send's own answer (a loaded homeserver): shown once, not twice.
    const echoed = new Set(replies.map((e) => e.unsigned?.transaction_id).filter(Boolean));
    pending = pending.filter((m) => !(m.eventId && ids.has(m.eventId)) && !echoed.has(m.txnId));
    const summary = r.threads.summary(rootId);
    const root = r.byId.get(rootId);
    const signature = [
      root ? `${root.event_id}:${r.latestEdit(root)?.event_id ?? ""}:${r.redacted.has(rootId)}` : "",
      ...replies.map((e) => `${e.event_id}:${r.latestEdit(e)?.event_id ?? ""}:${r.displayName(e.sender)}`),
      ...pending.map((m) => `${m.txnId}:${m.status}`),
      summary?.count ?? 0,
      loading,
      loadError ?? "",
    ].join("|");
    if (signature !== lastSignature) {
      lastSignature = signature;
      const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
      rootBox.replaceChildren();
      if (root && r.redacted.has(rootId)) rootBox.append(h("p", { class: "muted", text: "The message this thread started from was deleted." }));
      else if (root) rootBox.append(messageNode(r, root));
      countLine.textContent = replyCountText(Math.max(summary?.count ?? 0, replies.length));
      status.textContent = loadError ?? (loading ? "Loading the thread…" : "");
      status.hidden = !status.textContent;
      list.replaceChildren(
        ...replies.map((event) => messageNode(r, event)),
        ...pending.map((m) =>
          messageNode(r, { event_id: `~${m.txnId}`, type: m.type, sender: userId, origin_server_ts: m.ts, content: m.content }, m),
        ),
      );
      if (atBottom || pending.length) scroller.scrollTop = scroller.scrollHeight;
    }
    const marked = linkedShown ? null : el.querySelector(".message.linked");
    if (marked && el.isConnected) {
      marked.scrollIntoView({ block: "center" });
      linkedShown = true;
    }
    const failed = pending.find((m) => m.status === "failed");
    showError(failed ? describeError(failed.error) : "");
    markRead();
  }

  const r = room();
  if (r) {
    loadThread(client, r, rootId)
      .catch((e) => {
        loadError = `The thread could not be loaded: ${describeError(e)}`;
      })
      .finally(() => {
        loading = false;
        render();
      });
  }

  return {
    el,
    rootId,
    linkedId,
    render,
    focus: () => input.focus(),
    onFocus: () => markRead(),
  };
}
