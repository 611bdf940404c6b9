// A message's body as the timeline and the thread panel show it: text (sanitised HTML or
// linkified plain text) with mention pills, an image that opens larger, a file to download,
// or why it cannot be shown.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { HTML_FORMAT, linkifiedText, sanitizeHtml, stripReplyFallback } from "../markdown.js";
import { downloadFile, loadImage } from "../media.js";
import { openLightbox } from "./lightbox.js";
import { drawMentionPills } from "./mention-pills.js";

/** A message's content as last edited. */
export function currentContent(room, event) {
  const edit = room?.latestEdit(event);
  return edit?.content?.["m.new_content"] ?? event.content ?? {};
}

export function bodyText(content) {
  return typeof content.body === "string" ? content.body : "";
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * @param {import("./chat.js").ChatContext} ctx
 * @param {any} event
 * @param {any} content  the event's content as shown (edited, or a local echo's)
 */
export function renderBody(ctx, event, content) {
  const { client, userId } = ctx;
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
              downloadFile(client, content.url, name).catch((error) => ctx.showError(describeError(error)));
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
    nameOf: (uid) => ctx.room()?.displayName(uid) ?? uid,
    roleOf: (roleId) => ctx.people()?.roles.find((r) => r.role_id === roleId) ?? null,
  });
  if (msgtype === "m.emote") {
    wrap.prepend(`* ${ctx.room()?.displayName(event.sender) ?? event.sender} `);
    wrap.classList.add("emote");
  }
  if (msgtype === "m.notice") wrap.classList.add("notice");
  if (typeof content.body !== "string" && !content.formatted_body) {
    wrap.classList.add("notice");
    wrap.textContent = "This message can't be shown.";
  }
  return wrap;
}
