// The composer under a chat: the message box (Enter sends, Shift+Enter a new line, Up edits
// the last message of one's own, @ completes mentions), the reply bar, uploads with progress
// (button, drop, paste), emoji, and the typing notice others see.

import { autosize, h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { isEditable } from "./message-actions.js";
import { attachMentionAutocomplete, mentionSourcesFor } from "./mention-autocomplete.js";
import { pickEmoji } from "./popups.js";

const TYPING_RESEND_MS = 4000;

/**
 * @param {import("./chat.js").ChatContext} ctx
 * @param {object} parts
 * @param {(type: string, content: object) => any} parts.send  through the room's queue (views/room-sender.js)
 * @param {HTMLElement} parts.errorLine  where a send's or an upload's failure is said
 * @param {HTMLElement} parts.dropZone  files dropped on it are uploaded
 */
export function createComposer(ctx, { send, errorLine, dropZone }) {
  const { client, userId, roomId, label, ui } = ctx;
  let lastTyping = 0;

  const replyBar = h("div", { class: "reply-bar", "data-testid": "reply-bar" });
  replyBar.hidden = true;
  const uploads = h("div", { class: "uploads" });
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
  const el = h(
    "form",
    { class: "composer", "data-testid": "composer-form", onsubmit: (e) => e.preventDefault() },
    replyBar,
    uploads,
    errorLine,
    h("div", { class: "composer-row" }, attach, input, emojiButton),
    fileInput,
  );

  // @ mentions: the autocomplete, and what a sent message says in m.mentions (mentions.js).
  const mentionInput = attachMentionAutocomplete({
    client,
    input,
    form: el,
    userId,
    sources: () => mentionSourcesFor(ctx.room(), userId, ctx.people()),
  });

  if (ctx.cannotSend()) {
    input.disabled = true;
    input.placeholder = ctx.cannotSend();
    attach.disabled = true;
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && ui.state.replyTo) {
      ui.update({ replyTo: null });
    } else if (event.key === "ArrowUp" && !input.value) {
      const mine = [...ctx.room()?.timeline ?? []].reverse().find((e) => isEditable(ctx, e));
      if (mine) {
        event.preventDefault();
        ui.update({ editing: mine.event_id });
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
  dropZone.addEventListener("dragover", (event) => event.preventDefault());
  dropZone.addEventListener("drop", (event) => {
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

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    const replyTo = ui.state.replyTo;
    const content = mentionInput.content(text, replyTo);
    if (replyTo) content["m.relates_to"] = { "m.in_reply_to": { event_id: replyTo.event_id } };
    mentionInput.reset();
    input.value = "";
    autosize(input);
    ui.update({ replyTo: null });
    stopTyping();
    send("m.room.message", content);
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
      ctx.showError(`Could not upload ${file.name}: ${describeError(error)}`);
    }
  }

  /** The reply bar: whom the next message answers, with a button to cancel. */
  function showReply() {
    const event = ui.state.replyTo;
    replyBar.replaceChildren();
    replyBar.hidden = !event;
    if (!event) return;
    replyBar.append(
      h("span", { class: "muted" }, "Replying to ", h("strong", { text: ctx.room()?.displayName(event.sender) ?? event.sender })),
      h("button", {
        type: "button",
        class: "reply-cancel",
        "data-testid": "reply-cancel",
        "aria-label": "Cancel reply",
        onclick: () => ui.update({ replyTo: null }),
      }, icon("x", { size: 16 })),
    );
    input.focus();
  }
  ui.subscribe(showReply, ["replyTo"]);

  return {
    el,
    focus: () => input.focus(),
    /** The chat is closed: others stop seeing "typing…". */
    destroy: () => stopTyping(),
  };
}
