// A channel's chat: the timeline (grouped by author, edits, replies, reactions, attachments,
// history on scroll) and the composer (markdown-lite, replies, uploads, emoji, typing).

import { avatar } from "../avatar.js";
import { CALL_NOTICE_TYPES, callNotice } from "../calls/notices.js";
import { h } from "../dom.js";
import { channelIcon, icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { newTxnId } from "../matrix.js";
import {
  HTML_FORMAT,
  linkifiedText,
  messageContent,
  sanitizeHtml,
  stripReplyFallback,
} from "../markdown.js";
import { downloadFile, loadImage } from "../media.js";
import { MEMBER_EVENT, memberNotice } from "../member-notices.js";
import { mayMentionRoom, mentionsUser } from "../mentions.js";
import { SendQueue } from "../send-queue.js";
import { redactsOf } from "../sync.js";
import { lastMainEventId, threadRootOf } from "../threads.js";
import { openLightbox } from "./lightbox.js";
import { memberNoticeNode } from "./member-notice.js";
import { attachMentionAutocomplete, mentionSourcesFor } from "./mention-autocomplete.js";
import { drawMentionPills } from "./mention-pills.js";
import { confirmAction, pickEmoji } from "./popups.js";
import { createThreads } from "./threads-view.js";

const GROUP_GAP_MS = 7 * 60 * 1000;
const TYPING_RESEND_MS = 4000;
const TOP_LOAD_PX = 300;
const MESSAGE_TYPES = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function formatTime(ts) {
  const date = new Date(ts);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? `Today at ${timeFormat.format(date)}`
    : dateFormat.format(date);
}

function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.userId
 * @param {string} options.roomId
 * @param {object} options.channel  the provisioning API's Channel
 * @param {() => object|null} options.server  the current Server (for permissions and roles)
 * @param {(userId: string) => string|null} options.roleColor
 * @param {(permission: string) => boolean} [options.can]  permissions where no server decides (a DM)
 * @param {(userId: string, anchor: Element) => void} [options.onUserClick]  an author's name or avatar clicked
 * @param {string|null} [options.readOnly]  why nothing can be sent here, when nothing can
 * @param {() => ({members: any[], roles: any[]} | null)} [options.people]  the server's members
 *   and roles, for mentions (views/mention-autocomplete.js); a DM's come from its room
 * @param {{actions: (event: any, showError: (message: string) => void) => Array<{label: string, icon: string, testid: string, onclick: () => void}>, signature: (event: any) => string}} [options.messageTools]
 *   more actions in each message's hover menu (pins, views/pins.js), and what they depend on
 */
export function createChatView({ client, sync, userId, roomId, channel, server, roleColor, can: canOverride, onUserClick, readOnly = null, people = () => null, messageTools }) {
  const nodes = new Map(); // key → {signature, node}
  let editing = null; // event id being edited
  let replyTo = null; // event replied to
  let lastTyping = 0;
  let lastMarked = null;
  const askedMembers = new Set(); // users whose member event was fetched for the typing line
  let destroyed = false;
  let linked = null; // a message a link named: highlighted, and scrolled to once
  let linkedShown = false;

  const room = () => sync.room(roomId);
  const can = canOverride ?? ((permission) => Boolean(server()?.me?.permissions?.includes(permission)));
  const isDm = channel.kind === "dm";
  const label = `${isDm ? "@" : "#"}${channel.name}`;

  const start = h("div", { class: "timeline-start", "data-testid": "timeline-start" });
  const loader = h("div", { class: "timeline-loader", "data-testid": "history-loading", text: "Loading older messages…" });
  loader.hidden = true;
  const list = h("ol", { class: "messages", "data-testid": "messages" });
  const scroller = h("div", { class: "timeline", "data-testid": "timeline", tabindex: "-1" }, start, loader, list);

  const typingLine = h("div", { class: "typing", "data-testid": "typing", "aria-live": "polite" });
  const replyBar = h("div", { class: "reply-bar", "data-testid": "reply-bar" });
  replyBar.hidden = true;
  const uploads = h("div", { class: "uploads" });
  const composerError = h("p", { class: "composer-error", role: "alert", "data-testid": "composer-error" });
  composerError.hidden = true;

  const input = h("textarea", {
    class: "composer-input",
    "data-testid": "composer",
    rows: "1",
    placeholder: `Message ${label}`,
    "aria-label": `Message ${label}`,
    maxlength: "4000",
  });
  const fileInput = h("input", { type: "file", class: "file-input", "data-testid": "file-input", multiple: true, tabindex: "-1" });
  const attach = h("button", {
    type: "button",
    class: "composer-button attach",
    "data-testid": "attach",
    title: "Upload a file",
    "aria-label": "Upload a file",
    text: "+",
    onclick: () => fileInput.click(),
  });
  const emojiButton = h("button", {
    type: "button",
    class: "composer-button",
    "data-testid": "emoji-button",
    title: "Emoji",
    "aria-label": "Emoji",
    onclick: () => pickEmoji(emojiButton, insertAtCursor),
  }, icon("face-slightly-smiling", { size: 22 }));
  const composer = h(
    "form",
    { class: "composer", "data-testid": "composer-form", onsubmit: (e) => e.preventDefault() },
    replyBar,
    uploads,
    composerError,
    h("div", { class: "composer-row" }, attach, input, emojiButton),
    fileInput,
  );
  const el = h("section", { class: "chat", "data-testid": "chat", "data-room-id": roomId }, scroller, composer, typingLine);

  // @ mentions: the autocomplete, and what a sent message says in m.mentions (mentions.js).
  const mentionInput = attachMentionAutocomplete({
    client,
    input,
    form: composer,
    userId,
    sources: () => mentionSourcesFor(room(), userId, people()),
  });

  /** Why nothing can be sent here (the composer's and the thread panel's placeholder), or null. */
  const cannotSend = () =>
    readOnly || (!can("send_messages") && server() ? "You do not have permission to send messages in this channel." : null);
  // Threads (views/threads-view.js): a side panel in `el`, replies sent through this room's queue.
  const threads = createThreads({
    client,
    room,
    userId,
    host: el,
    renderBody: (event) => renderBody(event, currentContent(event)),
    roleColor,
    send,
    retry: (message) => queueOf(room()).retry(message),
    readOnly: cannotSend,
  });

  if (cannotSend()) {
    input.disabled = true;
    input.placeholder = cannotSend();
    attach.disabled = true;
  }

  // --- composer ------------------------------------------------------------------------------
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && replyTo) {
      setReply(null);
    } else if (event.key === "ArrowUp" && !input.value) {
      const mine = [...room()?.timeline ?? []].reverse().find((e) => isEditable(e));
      if (mine) {
        event.preventDefault();
        startEdit(mine.event_id);
      }
    }
  });
  input.addEventListener("input", () => {
    autosize(input);
    const now = Date.now();
    if (input.value && now - lastTyping > TYPING_RESEND_MS) {
      lastTyping = now;
      client.sendTyping(roomId, userId, true).catch(() => {});
    } else if (!input.value && lastTyping) {
      stopTyping();
    }
  });
  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files ?? []) upload(file);
    fileInput.value = "";
  });
  el.addEventListener("dragover", (event) => event.preventDefault());
  el.addEventListener("drop", (event) => {
    event.preventDefault();
    for (const file of event.dataTransfer?.files ?? []) upload(file);
  });
  input.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length) {
      event.preventDefault();
      files.forEach(upload);
    }
  });

  function autosize(area) {
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight, 240)}px`;
  }

  function insertAtCursor(text) {
    const { selectionStart: a, selectionEnd: b, value } = input;
    input.value = value.slice(0, a) + text + value.slice(b);
    input.selectionStart = input.selectionEnd = a + text.length;
    input.focus();
  }

  function stopTyping() {
    if (!lastTyping) return;
    lastTyping = 0;
    client.sendTyping(roomId, userId, false).catch(() => {});
  }

  function showComposerError(message) {
    composerError.textContent = message;
    composerError.hidden = !message;
  }

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    const content = mentionInput.content(text, replyTo);
    if (replyTo) content["m.relates_to"] = { "m.in_reply_to": { event_id: replyTo.event_id } };
    mentionInput.reset();
    input.value = "";
    autosize(input);
    setReply(null);
    stopTyping();
    send("m.room.message", content);
  }

  /** Send with a local echo at once; the room's queue sends in order (send-queue.js). */
  function send(type, content) {
    const r = room();
    if (!r) return null;
    const message = queueOf(r).enqueue(type, content, { txnId: newTxnId() });
    if (type === "m.room.message" && !content["m.relates_to"]?.rel_type) r.pending.push(message);
    sync.touch(roomId);
    return message;
  }

  /**
   * The room's send queue: kept on the room, so leaving the channel neither stops nor reorders
   * it; the view open on the room is the one told of changes.
   */
  function queueOf(r) {
    r.sendQueue ??= new SendQueue({
      // The queue waits out 429s itself, one message at a time.
      send: (message) =>
        client.sendEvent(roomId, message.type, message.content, message.txnId, { retryRateLimits: false }),
    });
    r.sendQueue.onChange = (message) => {
      if (message.status === "sent" && r.ids.has(message.eventId)) {
        r.pending = r.pending.filter((p) => p !== message);
      }
      if (!destroyed && message.status === "failed") showComposerError(describeError(message.error));
      if (!destroyed && message.status === "sent") showComposerError("");
      sync.touch(roomId);
    };
    return r.sendQueue;
  }

  /** Send a message that was not sent again: after the others, where its echo now stands. */
  function retrySend(r, message) {
    r.pending = [...r.pending.filter((p) => p !== message), message];
    queueOf(r).retry(message);
  }

  async function upload(file) {
    const bar = h("progress", { class: "upload-bar", max: "1", value: "0", "data-testid": "upload-progress" });
    const row = h("div", { class: "upload", "data-testid": "upload" }, h("span", { class: "upload-name", text: file.name }), bar);
    uploads.append(row);
    try {
      const mxc = await client.uploadWithProgress(file, {
        filename: file.name,
        onProgress: (fraction) => {
          bar.value = fraction;
        },
      });
      const info = { mimetype: file.type || "application/octet-stream", size: file.size };
      const isImage = /^image\/(png|jpeg|gif|webp)$/.test(file.type);
      if (isImage) {
        try {
          const bitmap = await createImageBitmap(file);
          info.w = bitmap.width;
          info.h = bitmap.height;
          bitmap.close();
        } catch {
          // dimensions are optional
        }
      }
      const content = { msgtype: isImage ? "m.image" : "m.file", body: file.name, filename: file.name, url: mxc, info };
      row.remove();
      send("m.room.message", content);
    } catch (error) {
      row.remove();
      showComposerError(`Could not upload ${file.name}: ${describeError(error)}`);
    }
  }

  function setReply(event) {
    replyTo = event;
    replyBar.replaceChildren();
    replyBar.hidden = !event;
    if (!event) return;
    replyBar.append(
      h("span", { class: "muted" }, "Replying to ", h("strong", { text: room()?.displayName(event.sender) ?? event.sender })),
      h("button", {
        type: "button",
        class: "reply-cancel",
        "data-testid": "reply-cancel",
        "aria-label": "Cancel reply",
        onclick: () => setReply(null),
      }, icon("x", { size: 16 })),
    );
    input.focus();
  }

  // --- actions on messages -------------------------------------------------------------------
  function isEditable(event) {
    return (
      event.sender === userId &&
      event.type === "m.room.message" &&
      !room()?.redacted.has(event.event_id) &&
      ["m.text", "m.emote", "m.notice"].includes(event.content?.msgtype)
    );
  }

  function startEdit(eventId) {
    editing = eventId;
    render();
  }

  async function saveEdit(event, text) {
    editing = null;
    const current = currentContent(event);
    if (!text.trim() || text === current.body) {
      render();
      return;
    }
    const newContent = messageContent(text, current.msgtype === "m.emote" ? "m.emote" : "m.text");
    // The edit keeps whom the message mentioned and notifies no one again (spec: edits' m.mentions).
    newContent["m.mentions"] = current["m.mentions"] ?? {};
    const content = {
      msgtype: newContent.msgtype,
      body: `* ${newContent.body}`,
      "m.new_content": newContent,
      "m.mentions": {},
      "m.relates_to": { rel_type: "m.replace", event_id: event.event_id },
    };
    if (newContent.formatted_body) {
      content.format = HTML_FORMAT;
      content.formatted_body = `* ${newContent.formatted_body}`;
    }
    // Shown at once; the sync brings the real edit a moment later.
    const r = room();
    r?.indexRelations({
      event_id: `~${newTxnId()}`,
      type: "m.room.message",
      sender: userId,
      origin_server_ts: Date.now(),
      content,
    });
    render();
    send("m.room.message", content);
  }

  async function deleteMessage(event) {
    const ok = await confirmAction({
      title: "Delete message",
      text: "Are you sure you want to delete this message? This cannot be undone.",
      preview: h("div", { class: "confirm-preview" }, bodyText(currentContent(event))),
    });
    if (!ok) return;
    try {
      await client.redact(roomId, event.event_id);
      room()?.redact(event.event_id);
      sync.touch(roomId);
    } catch (error) {
      showComposerError(describeError(error));
    }
  }

  async function toggleReaction(event, key) {
    const r = room();
    const mine = r?.reactions.get(event.event_id)?.get(key)?.get(userId);
    try {
      if (mine && !mine.startsWith("~")) {
        r.redact(mine);
        sync.touch(roomId);
        await client.redact(roomId, mine);
      } else if (!mine) {
        await client.sendEvent(roomId, "m.reaction", {
          "m.relates_to": { rel_type: "m.annotation", event_id: event.event_id, key },
        });
      }
    } catch (error) {
      showComposerError(describeError(error));
    }
  }

  // --- rendering -----------------------------------------------------------------------------
  function currentContent(event) {
    const edit = room()?.latestEdit(event);
    const content = edit?.content?.["m.new_content"] ?? event.content ?? {};
    return content;
  }

  function bodyText(content) {
    return typeof content.body === "string" ? content.body : "";
  }

  function renderBody(event, content) {
    const wrap = h("div", { class: "message-content", "data-testid": "message-body" });
    if (event.type === "m.room.encrypted") {
      wrap.classList.add("notice");
      wrap.append(
        icon("lock", { size: 14, className: "notice-icon" }),
        " This message is end-to-end encrypted and can't be read here. Open it in a Matrix client that has your keys.",
      );
      return wrap;
    }
    const msgtype = content.msgtype;
    const isReply = Boolean(event.content?.["m.relates_to"]?.["m.in_reply_to"]);
    if (msgtype === "m.image" && typeof content.url === "string") {
      const img = h("img", { class: "message-image", alt: bodyText(content), "data-testid": "message-image" });
      const w = content.info?.w;
      const ht = content.info?.h;
      if (Number.isFinite(w) && Number.isFinite(ht) && w > 0) {
        const scale = Math.min(1, 400 / w, 300 / ht);
        img.width = Math.round(w * scale);
        img.height = Math.round(ht * scale);
      }
      loadImage(img, client, content.url);
      // A button around it: a larger view opens by click or keyboard (views/lightbox.js).
      const open = h(
        "button",
        { type: "button", class: "message-image-button", "data-testid": "message-image-open", "aria-label": `View ${bodyText(content) || "the image"}` },
        img,
      );
      open.addEventListener("click", () => openLightbox(client, { mxc: content.url, name: bodyText(content) }));
      wrap.append(open);
      return wrap;
    }
    if (["m.file", "m.video", "m.audio"].includes(msgtype) && typeof content.url === "string") {
      const name = content.filename || bodyText(content) || "file";
      wrap.append(
        h(
          "div",
          { class: "file-card" },
          h("span", { class: "file-icon", "aria-hidden": "true" }, icon("file", { size: 28 })),
          h(
            "div",
            { class: "file-text" },
            h("a", {
              href: "#",
              class: "file-link",
              "data-testid": "message-file",
              text: name,
              onclick: (e) => {
                e.preventDefault();
                downloadFile(client, content.url, name).catch((error) => showComposerError(describeError(error)));
              },
            }),
            h("span", { class: "muted small", text: formatSize(content.info?.size) }),
          ),
        ),
      );
      return wrap;
    }
    let body = bodyText(content);
    if (content.format === HTML_FORMAT && typeof content.formatted_body === "string") {
      wrap.append(sanitizeHtml(content.formatted_body));
    } else {
      if (isReply && content === event.content) body = stripReplyFallback(body);
      wrap.append(linkifiedText(body));
    }
    drawMentionPills(wrap, content, {
      me: userId,
      nameOf: (uid) => room()?.displayName(uid) ?? uid,
      roleOf: (roleId) => people()?.roles.find((r) => r.role_id === roleId) ?? null,
    });
    if (msgtype === "m.emote") {
      wrap.prepend(`* ${room()?.displayName(event.sender) ?? event.sender} `);
      wrap.classList.add("emote");
    }
    if (msgtype === "m.notice") wrap.classList.add("notice");
    if (typeof content.body !== "string" && !content.formatted_body) {
      wrap.classList.add("notice");
      wrap.textContent = "This message can't be shown.";
    }
    return wrap;
  }

  function renderReplyPreview(event) {
    const target = event.content?.["m.relates_to"]?.["m.in_reply_to"]?.event_id;
    if (typeof target !== "string") return null;
    const r = room();
    const original = r?.byId.get(target);
    const box = h("div", { class: "reply-preview", "data-testid": "reply-preview" });
    if (!original) {
      box.append(h("span", { class: "muted", text: "Original message not loaded" }));
    } else if (r.redacted.has(target)) {
      box.append(h("span", { class: "muted", text: "Original message was deleted" }));
    } else {
      const name = h("span", { class: "reply-name", text: r.displayName(original.sender) });
      const color = roleColor(original.sender);
      if (color) name.style.color = color;
      const text = bodyText(currentContent(original)).split("\n")[0].slice(0, 200);
      box.append(name, h("span", { class: "reply-text", text }));
      box.addEventListener("click", () => nodes.get(target)?.node.scrollIntoView({ block: "center" }));
    }
    return box;
  }

  function renderReactions(event) {
    const byKey = room()?.reactions.get(event.event_id);
    if (!byKey || byKey.size === 0) return null;
    const bar = h("div", { class: "reactions" });
    for (const [key, senders] of byKey) {
      if (senders.size === 0) continue;
      const mine = senders.has(userId);
      bar.append(
        h(
          "button",
          {
            type: "button",
            class: `reaction${mine ? " mine" : ""}`,
            "data-testid": "reaction",
            "data-key": key,
            "aria-pressed": String(mine),
            title: [...senders.keys()].map((u) => room()?.displayName(u) ?? u).join(", "),
            onclick: () => toggleReaction(event, key),
          },
          h("span", { class: "reaction-key", text: key }),
          h("span", { class: "reaction-count", "data-testid": "reaction-count", text: String(senders.size) }),
        ),
      );
    }
    return bar;
  }

  function renderActions(event) {
    const actions = h("div", { class: "message-actions", role: "toolbar" });
    const add = (label, name, testid, onclick) =>
      actions.append(h("button", { type: "button", class: "action", title: label, "aria-label": label, "data-testid": testid, onclick }, icon(name, { size: 18 })));
    if (event.type === "m.room.message") {
      add("Add reaction", "face-slightly-smiling-plus", "action-react", (e) => pickEmoji(e.currentTarget, (emoji) => toggleReaction(event, emoji)));
      if (can("send_messages")) add("Reply", "reply", "action-reply", () => setReply(event));
    }
    if (threads.hasThread(event.event_id)) add("Open thread", "messages-square", "action-thread", () => threads.open(event.event_id));
    else if (threads.canOpen(event) && !cannotSend()) add("Create thread", "messages-square", "action-thread", () => threads.open(event.event_id));
    for (const tool of messageTools?.actions(event, showComposerError) ?? []) add(tool.label, tool.icon, tool.testid, tool.onclick);
    if (isEditable(event)) add("Edit", "pencil", "action-edit", () => startEdit(event.event_id));
    if (event.sender === userId || can("manage_messages")) {
      add("Delete", "trash", "action-delete", () => deleteMessage(event));
    }
    return actions;
  }

  function renderEditor(event) {
    const area = h("textarea", { class: "edit-input", "data-testid": "edit-input", rows: "1" });
    area.value = bodyText(currentContent(event));
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        saveEdit(event, area.value.trim());
      } else if (e.key === "Escape") {
        e.preventDefault();
        editing = null;
        render();
        input.focus();
      }
    });
    area.addEventListener("input", () => autosize(area));
    queueMicrotask(() => {
      autosize(area);
      area.focus();
      area.selectionStart = area.selectionEnd = area.value.length;
    });
    return h(
      "div",
      { class: "editor" },
      area,
      h("p", { class: "small muted", text: "Enter to save · Esc to cancel · Shift+Enter for a new line" }),
    );
  }

  function renderMessage(item, grouped) {
    const { event, echo } = item;
    const r = room();
    const content = echo ? echo.content : currentContent(event);
    const edited = !echo && Boolean(r.latestEdit(event));
    const name = r.displayName(event.sender);
    const node = h("li", {
      class: `message${grouped ? " grouped" : ""}${echo ? ` pending ${echo.status}` : ""}`,
      "data-testid": "message",
      "data-event-id": echo ? "" : event.event_id,
      "data-sender": event.sender,
    });
    if (!echo && event.event_id === linked) node.classList.add("linked");
    if (!echo && mentionsMe(event, content)) node.classList.add("mentioned");
    const gutter = grouped
      ? h("span", { class: "gutter-time", text: timeFormat.format(new Date(event.origin_server_ts)) })
      : avatar(client, { mxc: r.avatarOf(event.sender), name, id: event.sender, className: "avatar message-avatar" });
    if (onUserClick && !grouped) userClickable(gutter, event.sender, `${name}: profile`);
    const main = h("div", { class: "message-main" });
    const reply = renderReplyPreview(event);
    if (reply) {
      node.classList.add("has-reply");
      main.append(reply);
    }
    if (!grouped || reply) {
      const author = h("span", { class: "author", "data-testid": "message-author", text: name });
      if (onUserClick) userClickable(author, event.sender);
      const color = roleColor(event.sender);
      if (color) author.style.color = color;
      main.append(
        h(
          "header",
          { class: "message-header" },
          author,
          h("time", { class: "timestamp", datetime: new Date(event.origin_server_ts).toISOString(), text: formatTime(event.origin_server_ts) }),
        ),
      );
    }
    if (!echo && editing === event.event_id) {
      main.append(renderEditor(event));
    } else {
      const body = renderBody(event, content);
      if (edited) body.append(h("span", { class: "edited", "data-testid": "edited", text: " (edited)" }));
      main.append(body);
    }
    if (echo?.status === "failed") {
      main.append(
        h("p", { class: "send-failed" }, "Not sent. ",
          h("button", {
            type: "button",
            class: "link-button",
            "data-testid": "retry-send",
            text: "Retry",
            onclick: () => retrySend(r, echo),
          }),
        ),
      );
    }
    if (!echo) {
      const reactions = renderReactions(event);
      if (reactions) main.append(reactions);
      const thread = threads.summaryNode(event);
      if (thread) main.append(thread);
    }
    node.append(gutter, main);
    if (!echo) node.append(renderActions(event));
    return node;
  }

  /** Whether a message (as now edited) mentions the user: highlighted, as in Discord. */
  function mentionsMe(event, content) {
    const r = room();
    if (!r) return false;
    return mentionsUser(
      { sender: event.sender, content },
      { userId, displayName: r.displayName(userId), senderMayMentionRoom: mayMentionRoom(r, event.sender) },
    );
  }

  /** A name or avatar that opens the person's profile card (and from there a DM). */
  function userClickable(node, sender, ariaLabel = null) {
    node.classList.add("user-link");
    node.setAttribute("role", "button");
    node.setAttribute("tabindex", "0");
    if (ariaLabel) {
      node.removeAttribute("aria-hidden");
      node.setAttribute("aria-label", ariaLabel);
    }
    node.addEventListener("click", () => onUserClick(sender, node));
    node.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        onUserClick(sender, node);
      }
    });
  }

  function signature(item, grouped) {
    const { event, echo } = item;
    const r = room();
    if (echo) return `echo|${echo.status}|${grouped}`;
    const edit = r.latestEdit(event);
    const reactions = [...(r.reactions.get(event.event_id) ?? [])]
      .map(([k, s]) => `${k}:${[...s.keys()].sort().join(",")}`)
      .join(";");
    const replyTarget = event.content?.["m.relates_to"]?.["m.in_reply_to"]?.event_id;
    const replySig = replyTarget
      ? `${r.byId.has(replyTarget)}:${r.redacted.has(replyTarget)}:${r.latestEdit(r.byId.get(replyTarget) ?? {})?.event_id ?? ""}`
      : "";
    return [
      grouped,
      edit?.event_id ?? "",
      reactions,
      replySig,
      editing === event.event_id,
      r.displayName(event.sender),
      r.avatarOf(event.sender) ?? "",
      roleColor(event.sender) ?? "",
      can("manage_messages"),
      threads.signature(event.event_id),
      messageTools?.signature(event) ?? "",
    ].join("|");
  }

  function visibleItems() {
    const r = room();
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

  function renderNotice(item) {
    return h(
      "li",
      { class: "message system-notice", "data-testid": "call-notice", "data-event-id": item.event.event_id },
      h("span", { class: "system-notice-icon", "aria-hidden": "true" }, icon("phone", { size: 16 })),
      h("span", { class: "system-notice-text", text: item.notice }),
      h("time", { class: "timestamp", datetime: new Date(item.event.origin_server_ts).toISOString(), text: formatTime(item.event.origin_server_ts) }),
    );
  }

  function render() {
    if (destroyed) return;
    const r = room();
    const before = {
      top: scroller.scrollTop,
      fromBottom: scroller.scrollHeight - scroller.scrollTop,
      atBottom: scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48,
      firstKey: list.firstElementChild?.dataset.key ?? null,
    };
    const items = visibleItems();
    const seen = new Set();
    const children = [];
    let prev = null;
    for (const item of items) {
      const grouped =
        prev !== null &&
        !prev.notice &&
        prev.event.sender === item.event.sender &&
        item.event.origin_server_ts - prev.event.origin_server_ts < GROUP_GAP_MS &&
        !item.event.content?.["m.relates_to"]?.["m.in_reply_to"];
      const sig = item.notice ? `notice|${item.notice}` : signature(item, grouped);
      let entry = nodes.get(item.key);
      if (!entry || entry.signature !== sig) {
        entry = { signature: sig, node: item.node?.() ?? (item.notice ? renderNotice(item) : renderMessage(item, grouped)) };
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

    start.replaceChildren();
    if (r?.atStart && isDm) {
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

    const firstKey = list.firstElementChild?.dataset.key ?? null;
    if (before.atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (firstKey !== before.firstKey) {
      // Older messages went in above: keep what the person was reading where it was.
      scroller.scrollTop = scroller.scrollHeight - before.fromBottom;
    } else {
      scroller.scrollTop = before.top;
    }
    if (linked && !linkedShown) {
      const node = nodes.get(linked)?.node;
      if (node) {
        node.scrollIntoView({ block: "center" });
        linkedShown = true;
      }
    }
    renderTyping();
    markRead();
    threads.render();
    queueMicrotask(fillViewport);
  }

  function renderTyping() {
    const r = room();
    (r?.typing ?? []).forEach(loadMember);
    const names = (r?.typing ?? []).map((u) => r.displayName(u));
    typingLine.replaceChildren();
    if (names.length === 0) return;
    const who = names.length > 3 ? "Several people are" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"}`;
    typingLine.append(h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("strong", { text: who.replace(/ (is|are)$/, "") }), ` ${who.endsWith("are") ? "are" : "is"} typing…`);
  }

  /** Fetch the member event of someone typing who has sent nothing lately: lazy loading has
   * not brought it, and without it they would show by their user id, not their name. */
  function loadMember(uid) {
    const r = room();
    if (!r || r.member(uid) || askedMembers.has(uid)) return;
    askedMembers.add(uid);
    client
      .getStateEvent(roomId, "m.room.member", uid)
      .then((content) => {
        if (!content || r.member(uid)) return;
        r.pastMembers.set(uid, { type: "m.room.member", state_key: uid, sender: uid, content });
        if (!destroyed) renderTyping();
      })
      .catch((error) => console.warn("member failed to load", error));
  }

  /** Move the read markers to the newest event when it is on screen and the window has focus. */
  function markRead() {
    const r = room();
    const last = lastMainEventId(r?.timeline ?? []);
    if (!last || last === lastMarked || !document.hasFocus() || document.hidden) return;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
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
    const r = room();
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
    return scroller.isConnected && scroller.clientHeight > 0;
  }

  /** Load history until the timeline fills the view (or the room's start is reached). */
  function fillViewport() {
    const r = room();
    if (destroyed || !r || r.atStart || r.loadingOlder || !laidOut()) return;
    if (scroller.scrollHeight <= scroller.clientHeight + TOP_LOAD_PX) loadOlder();
  }

  scroller.addEventListener("scroll", () => {
    if (laidOut() && scroller.scrollTop < TOP_LOAD_PX) loadOlder();
    markRead();
  });
  // Once it gets a size (attached, shown, window resized), fill it if it is not full yet.
  const resizes = new ResizeObserver(() => fillViewport());
  resizes.observe(scroller);
  const onFocus = () => {
    markRead();
    threads.onFocus();
  };
  window.addEventListener("focus", onFocus);

  return {
    el,
    /** Header controls of this chat (home.js shows them beside the channel's name). */
    tools: [threads.listButton],
    render,
    focus: () => input.focus(),
    destroy() {
      destroyed = true;
      resizes.disconnect();
      stopTyping();
      window.removeEventListener("focus", onFocus);
    },
    isRedactionFor: (event) => redactsOf(event),
    /** Highlight a message a link named, and scroll to it (when it is in the loaded history). */
    reveal(eventId) {
      if (linked !== eventId) {
        const old = linked;
        linked = eventId;
        linkedShown = false;
        for (const key of [old, eventId]) nodes.delete(key);
      }
      render();
    },
  };
}
