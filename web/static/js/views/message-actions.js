// What can be done to a message: react, reply, open or start its thread, pin (views/pins.js),
// edit (in place, where it stands) and delete; the hover toolbar that offers them.

import { autosize, h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { HTML_FORMAT, messageContent } from "../markdown.js";
import { newTxnId } from "../matrix.js";
import { bodyText, currentContent } from "./message-body.js";
import { confirmAction, pickEmoji } from "./popups.js";

/** Whether the user may edit a message: their own text, not deleted. */
export function isEditable(ctx, event) {
  return (
    event.sender === ctx.userId &&
    event.type === "m.room.message" &&
    !ctx.room()?.redacted.has(event.event_id) &&
    ["m.text", "m.emote", "m.notice"].includes(event.content?.msgtype)
  );
}

/**
 * @param {import("./chat.js").ChatContext} ctx
 * @param {object} parts
 * @param {(type: string, content: object) => any} parts.send  through the room's queue (views/room-sender.js)
 * @param {ReturnType<typeof import("./threads-view.js").createThreads>} parts.threads
 * @param {() => void} parts.focusComposer
 */
export function createMessageActions(ctx, { send, threads, focusComposer }) {
  const { client, sync, userId, roomId, ui } = ctx;

  async function saveEdit(event, text) {
    const current = currentContent(ctx.room(), event);
    if (!text.trim() || text === current.body) {
      ui.update({ editing: null });
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
    ui.batch(() => {
      ui.update({ editing: null });
      ctx.room()?.indexRelations({
        event_id: `~${newTxnId()}`,
        type: "m.room.message",
        sender: userId,
        origin_server_ts: Date.now(),
        content,
      });
    });
    send("m.room.message", content);
  }

  async function deleteMessage(event) {
    const ok = await confirmAction({
      title: "Delete message",
      text: "Are you sure you want to delete this message? This cannot be undone.",
      preview: h("div", { class: "confirm-preview" }, bodyText(currentContent(ctx.room(), event))),
    });
    if (!ok) return;
    try {
      await client.redact(roomId, event.event_id);
      ctx.room()?.redact(event.event_id);
      sync.touch(roomId);
    } catch (error) {
      ctx.showError(describeError(error));
    }
  }

  async function toggleReaction(event, key) {
    const r = ctx.room();
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
      ctx.showError(describeError(error));
    }
  }

  /** The hover toolbar of a message. */
  function toolbar(event) {
    const actions = h("div", { class: "message-actions", role: "toolbar" });
    const add = (label, name, testid, onclick) =>
      actions.append(h("button", { type: "button", class: "action", title: label, "aria-label": label, "data-testid": testid, onclick }, icon(name, { size: 18 })));
    if (event.type === "m.room.message") {
      add("Add reaction", "face-slightly-smiling-plus", "action-react", (e) => pickEmoji(e.currentTarget, (emoji) => toggleReaction(event, emoji)));
      if (ctx.can("send_messages")) add("Reply", "reply", "action-reply", () => ui.update({ replyTo: event }));
    }
    if (threads.hasThread(event.event_id)) add("Open thread", "messages-square", "action-thread", () => threads.open(event.event_id));
    else if (threads.canOpen(event) && !ctx.cannotSend()) add("Create thread", "messages-square", "action-thread", () => threads.open(event.event_id));
    for (const tool of ctx.messageTools?.actions(event, ctx.showError) ?? []) add(tool.label, tool.icon, tool.testid, tool.onclick);
    if (isEditable(ctx, event)) add("Edit", "pencil", "action-edit", () => ui.update({ editing: event.event_id }));
    if (event.sender === userId || ctx.can("manage_messages")) {
      add("Delete", "trash", "action-delete", () => deleteMessage(event));
    }
    return actions;
  }

  /** The message being edited, in place: Enter saves, Esc cancels. */
  function editor(event) {
    const area = h("textarea", { class: "edit-input", "data-testid": "edit-input", rows: "1" });
    area.value = bodyText(currentContent(ctx.room(), event));
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        saveEdit(event, area.value.trim());
      } else if (e.key === "Escape") {
        e.preventDefault();
        ui.update({ editing: null });
        focusComposer();
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

  return { toolbar, editor, toggleReaction };
}
