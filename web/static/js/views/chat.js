// A channel's chat (or a DM's): the timeline (chat-timeline.js, each line drawn by
// message-view.js and message-body.js), the composer (composer.js), the actions on a message
// (message-actions.js), sending in order (room-sender.js), the typing line (typing-line.js) and
// threads (threads-view.js). This module builds them around a small store of the chat's own
// state (what is being edited, what is replied to, the message a link named) and wires them.

import { h } from "../dom.js";
import { Store } from "../store.js";
import { redactsOf } from "../sync.js";
import { createTimeline } from "./chat-timeline.js";
import { createComposer } from "./composer.js";
import { createMessageActions } from "./message-actions.js";
import { currentContent, renderBody } from "./message-body.js";
import { mentionSourcesFor } from "./mention-autocomplete.js";
import { createMessageView } from "./message-view.js";
import { createRoomSender } from "./room-sender.js";
import { createThreads } from "./threads-view.js";
import { createTypingLine } from "./typing-line.js";

/**
 * What the parts of one chat share, passed to each once.
 * @typedef {object} ChatContext
 * @property {import("../matrix.js").MatrixClient} client
 * @property {import("../sync.js").SyncEngine} sync
 * @property {string} userId
 * @property {string} roomId
 * @property {any} channel  the provisioning API's Channel ({name, kind: "dm"} for a DM)
 * @property {string} label  "#general" or "@Ann"
 * @property {() => any} room  the room as the sync has it, or null
 * @property {(permission: string) => boolean} can
 * @property {() => string|null} cannotSend  why nothing can be sent here, or null
 * @property {(userId: string) => string|null} roleColor
 * @property {() => ({members: any[], roles: any[]} | null)} people
 * @property {((userId: string, anchor: Element) => void) | undefined} onUserClick
 * @property {any} messageTools
 * @property {Store<{editing: string|null, replyTo: any, linked: string|null}>} ui  the chat's own state
 * @property {(message: string) => void} showError  under the composer ("" clears it)
 * @property {boolean} destroyed  the chat was closed
 */

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
  const can = canOverride ?? ((permission) => Boolean(server()?.me?.permissions?.includes(permission)));
  const errorLine = h("p", { class: "composer-error", role: "alert", "data-testid": "composer-error" });
  errorLine.hidden = true;

  /** @type {ChatContext} */
  const ctx = {
    client,
    sync,
    userId,
    roomId,
    channel,
    label: `${channel.kind === "dm" ? "@" : "#"}${channel.name}`,
    room: () => sync.room(roomId),
    can,
    cannotSend: () =>
      readOnly || (!can("send_messages") && server() ? "You do not have permission to send messages in this channel." : null),
    roleColor,
    people,
    onUserClick,
    messageTools,
    ui: new Store({ editing: null, replyTo: null, linked: null }),
    showError(message) {
      errorLine.textContent = message;
      errorLine.hidden = !message;
    },
    destroyed: false,
  };

  const el = h("section", { class: "chat", "data-testid": "chat", "data-room-id": roomId });
  const sender = createRoomSender(ctx);
  // Threads (views/threads-view.js): a side panel in `el`, replies sent through this room's queue.
  const threads = createThreads({
    client,
    room: ctx.room,
    userId,
    host: el,
    renderBody: (event) => renderBody(ctx, event, currentContent(ctx.room(), event)),
    roleColor,
    send: sender.send,
    retry: sender.retryInThread,
    readOnly: ctx.cannotSend,
    mentions: () => mentionSourcesFor(ctx.room(), userId, ctx.people()),
  });
  const composer = createComposer(ctx, { send: sender.send, errorLine, dropZone: el });
  const actions = createMessageActions(ctx, { send: sender.send, threads, focusComposer: composer.focus });
  const messages = createMessageView(ctx, { actions, threads, retry: sender.retry, scrollTo: (eventId) => timeline.scrollTo(eventId) });
  const typing = createTypingLine(ctx);
  const timeline = createTimeline(ctx, {
    messages,
    onRendered: () => {
      typing.render();
      threads.render();
    },
  });
  el.append(timeline.el, composer.el, typing.el);
  // A message's editor opens or closes in place.
  ctx.ui.subscribe(() => timeline.render(), ["editing"]);

  const onFocus = () => {
    timeline.markRead();
    threads.onFocus();
  };
  window.addEventListener("focus", onFocus);

  return {
    el,
    /** Header controls of this chat (the shell shows them beside the channel's name). */
    tools: [threads.listButton],
    render: () => timeline.render(),
    focus: () => composer.focus(),
    destroy() {
      ctx.destroyed = true;
      timeline.destroy();
      composer.destroy();
      window.removeEventListener("focus", onFocus);
    },
    isRedactionFor: (event) => redactsOf(event),
    /** Open what an address names (routes.js): a thread (a message of it marked), or a message. */
    follow({ threadId = null, eventId = null }) {
      threads.follow(threadId, eventId);
      if (eventId && !threadId) timeline.reveal(eventId);
      else timeline.render();
    },
    /** Highlight a message a link named, and scroll to it (when it is in the loaded history). */
    reveal: (eventId) => timeline.reveal(eventId),
  };
}
