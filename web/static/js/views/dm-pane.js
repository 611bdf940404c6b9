// What the content shows for the open direct conversation: its header (the partner's name, the
// DM's search and pins from views/channel-tools.js, and buttons other modules add, such as the
// call buttons of views/direct-call.js), then its chat (the channels' chat view), or while there
// is none yet, the invitation's card, "Opening…", or why it could not be opened.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { avatar } from "../avatar.js";
import { mayPinIn } from "../pins.js";
import { createChannelTools } from "./channel-tools.js";
import { createChatView } from "./chat.js";
import { pinTools } from "./pins.js";

/**
 * Buttons other modules add to the DM chat header (a call button, for instance): each is
 * `({roomId, userId, client, sync}) => Element|null`, called whenever a DM chat is built.
 */
const headerActions = [];
export function registerDmHeaderAction(build) {
  headerActions.push(build);
}

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.userId  who is signed in
 * @param {() => void} options.toggleNav  the phone-sized menu button of the header
 * @param {(userId: string, room?: any) => string} options.nameOf
 * @param {(userId: string, room?: any) => string | null} options.avatarUrlOf
 * @param {(anchor: Element, person: {userId: string, name: string, avatar: string | null}) => void} options.showProfile
 */
export function createDmPanes({ client, sync, userId, toggleNav, nameOf, avatarUrlOf, showProfile }) {
  function header(roomId, partner, name, room = null) {
    const title = h("span", { class: "content-title", "data-testid": "dm-title", text: name });
    const actions = h("div", { class: "dm-header-actions", "data-testid": "dm-header-actions" });
    if (roomId && room) {
      for (const build of headerActions) {
        try {
          const node = build({ roomId, userId: partner, client, sync });
          if (node) actions.append(node);
        } catch (error) {
          console.warn("a DM header action failed", error);
        }
      }
    }
    return h(
      "header",
      { class: "content-header dm-header", "data-testid": "dm-header", "data-room-id": roomId ?? "", "data-user-id": partner ?? "" },
      h("button", { type: "button", class: "icon-button nav-toggle", "aria-label": "Open the server and channel menu", onclick: toggleNav }, icon("menu")),
      h("span", { class: "content-icon", "aria-hidden": "true", text: "@" }),
      title,
      h("span", { class: "content-topic muted", text: partner ?? "" }),
      actions,
    );
  }

  /**
   * The DM's chat, under its header.
   * @param {string} roomId
   * @param {string | null} partner
   */
  function chat(roomId, partner) {
    const room = sync.room(roomId);
    const name = partner ? nameOf(partner, room) : room?.name || "Direct message";
    const encrypted = Boolean(room?.getState("m.room.encryption"));
    const view = createChatView({
      client,
      sync,
      userId,
      roomId,
      channel: { name, kind: "dm" },
      server: () => null,
      roleColor: () => null,
      can: (permission) => permission === "send_messages" && !encrypted,
      onUserClick: (uid, anchor) => showProfile(anchor, { userId: uid, name: nameOf(uid, sync.room(roomId)), avatar: avatarUrlOf(uid, sync.room(roomId)) }),
      readOnly: encrypted
        ? "This conversation is end-to-end encrypted: this app can't send or read messages in it. Use a Matrix client that has your keys."
        : null,
      messageTools: pinTools({ client, sync, roomId, mayPin: () => mayPinIn(sync.room(roomId), userId) }),
    });
    const top = header(roomId, partner, name, room);
    // Search and pins of this conversation, before the header's other actions (a call).
    const tools = createChannelTools({
      client,
      sync,
      roleColor: () => null,
      current: () => ({ server: null, channel: { channel_id: roomId, name }, dm: { userId, reveal: (id) => view.reveal(id) } }),
    });
    tools.update();
    top.querySelector("[data-testid=dm-header-actions]")?.prepend(tools.el);
    const title = top.querySelector("[data-testid=dm-title]");
    const el = h("section", { class: "dm-pane", "data-testid": "dm-chat", "data-room-id": roomId }, top, view.el);
    return {
      key: `chat:${roomId}`,
      el,
      roomId,
      render() {
        if (partner) title.textContent = nameOf(partner, sync.room(roomId));
        view.render();
      },
      focus: () => view.focus(),
      destroy: () => view.destroy(),
    };
  }

  /**
   * The pane of a DM with no chat to show yet: its invitation, "Opening…", or why it failed.
   * @param {string} key  what it shows (views/dms.js `key`)
   * @param {{userId: string, roomId: string | null, error: string | null}} dm
   * @param {() => HTMLElement} inviteActions  Accept / Decline, for an invitation
   */
  function notice(key, dm, inviteActions) {
    const [kind] = key.split(":");
    const name = nameOf(dm.userId);
    let inner;
    if (kind === "error") {
      inner = h("p", { class: "form-error", role: "alert", "data-testid": "dm-error", text: `Could not open the conversation with ${name}: ${dm.error}` });
    } else if (kind === "invite") {
      inner = h(
        "div",
        { class: "card dm-invite-card", "data-testid": "dm-invite" },
        avatar(client, { mxc: avatarUrlOf(dm.userId), name, id: dm.userId, size: 80, className: "avatar large" }),
        h("h2", { class: "welcome-name", text: name }),
        h("p", { class: "muted", text: `${dm.userId} wants to start a conversation with you.` }),
        inviteActions(),
      );
    } else {
      inner = h("p", { class: "muted", "data-testid": "dm-opening", text: `Opening the conversation with ${name}…` });
    }
    const el = h("section", { class: "dm-pane" }, header(dm.roomId, dm.userId, name), h("div", { class: "empty-state" }, inner));
    return { key, el, roomId: dm.roomId, render() {}, focus() {}, destroy() {} };
  }

  return { chat, notice };
}
