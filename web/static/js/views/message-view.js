// One line of the timeline: a message (avatar or time in the gutter, author in their role's
// colour, reply preview, body, "(edited)", reactions, thread summary, "Not sent. Retry", the
// hover toolbar), or a system notice (a call ended); and what a line's drawing depends on.

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { plainPreview } from "../markdown.js";
import { mentionsReader } from "../mentions.js";
import { currentContent, renderBody } from "./message-body.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function formatTime(ts) {
  const date = new Date(ts);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? `Today at ${timeFormat.format(date)}`
    : dateFormat.format(date);
}

/**
 * A line of the timeline: a message, a local echo, or a notice.
 * @typedef {{key: string, event: any, echo?: any, notice?: string, node?: () => HTMLElement}} TimelineItem
 */

/**
 * @param {import("./chat.js").ChatContext} ctx
 * @param {object} parts
 * @param {ReturnType<typeof import("./message-actions.js").createMessageActions>} parts.actions
 * @param {ReturnType<typeof import("./threads-view.js").createThreads>} parts.threads
 * @param {(message: any) => void} parts.retry  send a message that was not sent again
 * @param {(eventId: string) => void} parts.scrollTo  show a message of the timeline
 */
export function createMessageView(ctx, { actions, threads, retry, scrollTo }) {
  const { client, userId, ui } = ctx;

  /** @param {TimelineItem} item */
  function message(item, grouped) {
    const { event, echo } = item;
    const r = ctx.room();
    const content = echo ? echo.content : currentContent(r, event);
    const edited = !echo && Boolean(r.latestEdit(event));
    const name = r.displayName(event.sender);
    const node = h("li", {
      class: `message${grouped ? " grouped" : ""}${echo ? ` pending ${echo.status}` : ""}`,
      "data-testid": "message",
      "data-event-id": echo ? "" : event.event_id,
      "data-sender": event.sender,
    });
    if (!echo && event.event_id === ui.state.linked) node.classList.add("linked");
    if (!echo && mentionsReader(r, event, userId)) node.classList.add("mentioned");
    const gutter = grouped
      ? h("span", { class: "gutter-time", text: timeFormat.format(new Date(event.origin_server_ts)) })
      : avatar(client, { mxc: r.avatarOf(event.sender), name, id: event.sender, className: "avatar message-avatar" });
    if (ctx.onUserClick && !grouped) userClickable(gutter, event.sender, `${name}: profile`);
    const main = h("div", { class: "message-main" });
    const reply = replyPreview(event);
    if (reply) {
      node.classList.add("has-reply");
      main.append(reply);
    }
    if (!grouped || reply) {
      const author = h("span", { class: "author", "data-testid": "message-author", text: name });
      if (ctx.onUserClick) userClickable(author, event.sender);
      const color = ctx.roleColor(event.sender);
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
    if (!echo && ui.state.editing === event.event_id) {
      main.append(actions.editor(event));
    } else {
      const body = renderBody(ctx, event, content);
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
            onclick: () => retry(echo),
          }),
        ),
      );
    }
    if (!echo) {
      const bar = reactions(event);
      if (bar) main.append(bar);
      const thread = threads.summaryNode(event);
      if (thread) main.append(thread);
    }
    node.append(gutter, main);
    if (!echo) node.append(actions.toolbar(event));
    return node;
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
    node.addEventListener("click", () => ctx.onUserClick(sender, node));
    node.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        ctx.onUserClick(sender, node);
      }
    });
  }

  function replyPreview(event) {
    const target = event.content?.["m.relates_to"]?.["m.in_reply_to"]?.event_id;
    if (typeof target !== "string") return null;
    const r = ctx.room();
    const original = r?.byId.get(target);
    const box = h("div", { class: "reply-preview", "data-testid": "reply-preview" });
    if (!original) {
      box.append(h("span", { class: "muted", text: "Original message not loaded" }));
    } else if (r.redacted.has(target)) {
      box.append(h("span", { class: "muted", text: "Original message was deleted" }));
    } else {
      const name = h("span", { class: "reply-name", text: r.displayName(original.sender) });
      const color = ctx.roleColor(original.sender);
      if (color) name.style.color = color;
      const text = plainPreview(currentContent(r, original)).split("\n")[0].slice(0, 200);
      box.append(name, h("span", { class: "reply-text", text }));
      box.addEventListener("click", () => scrollTo(target));
    }
    return box;
  }

  function reactions(event) {
    const byKey = ctx.room()?.reactions.get(event.event_id);
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
            title: [...senders.keys()].map((u) => ctx.room()?.displayName(u) ?? u).join(", "),
            onclick: () => actions.toggleReaction(event, key),
          },
          h("span", { class: "reaction-key", text: key }),
          h("span", { class: "reaction-count", "data-testid": "reaction-count", text: String(senders.size) }),
        ),
      );
    }
    return bar;
  }

  /** @param {TimelineItem} item */
  function notice(item) {
    return h(
      "li",
      { class: "message system-notice", "data-testid": "call-notice", "data-event-id": item.event.event_id },
      h("span", { class: "system-notice-icon", "aria-hidden": "true" }, icon("phone", { size: 16 })),
      h("span", { class: "system-notice-text", text: item.notice }),
      h("time", { class: "timestamp", datetime: new Date(item.event.origin_server_ts).toISOString(), text: formatTime(item.event.origin_server_ts) }),
    );
  }

  /**
   * Everything a message's drawing depends on: the line is drawn again when this changes.
   * @param {TimelineItem} item
   */
  function signature(item, grouped) {
    const { event, echo } = item;
    const r = ctx.room();
    if (echo) return `echo|${echo.status}|${grouped}`;
    const edit = r.latestEdit(event);
    const reactionSig = [...(r.reactions.get(event.event_id) ?? [])]
      .map(([k, s]) => `${k}:${[...s.keys()].sort().join(",")}`)
      .join(";");
    const replyTarget = event.content?.["m.relates_to"]?.["m.in_reply_to"]?.event_id;
    const replySig = replyTarget
      ? `${r.byId.has(replyTarget)}:${r.redacted.has(replyTarget)}:${r.latestEdit(r.byId.get(replyTarget) ?? {})?.event_id ?? ""}`
      : "";
    return [
      grouped,
      edit?.event_id ?? "",
      reactionSig,
      replySig,
      ui.state.editing === event.event_id,
      r.displayName(event.sender),
      r.avatarOf(event.sender) ?? "",
      ctx.roleColor(event.sender) ?? "",
      ctx.can("manage_messages"),
      threads.signature(event.event_id),
      ctx.messageTools?.signature(event) ?? "",
    ].join("|");
  }

  return { message, notice, signature };
}
