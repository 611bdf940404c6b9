// The header above the chat: the phone's menu button, the open channel's icon, name and topic
// (the server's name, or Home, when no channel is open), the chat's own tools (the thread list),
// pins and search, the channel's mute bell and the member list's button.

import { h } from "../dom.js";
import { channelIcon, icon } from "../icons.js";
import { SELECTION_KEYS, openPlace, roleColor } from "../store.js";
import { createChannelTools } from "./channel-tools.js";
import { muteButton } from "./mute.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {import("../store.js").ShellStore} options.store
 * @param {ReturnType<typeof import("../notifications.js").createNotifications>} options.notify
 * @param {ReturnType<typeof import("./drawers.js").createDrawers>} options.drawers
 */
export function createContentHeader({ client, sync, store, notify, drawers }) {
  const navToggle = h("button", {
    type: "button",
    class: "icon-button nav-toggle",
    "data-testid": "nav-toggle",
    "aria-label": "Open the server and channel menu",
    "aria-expanded": "false",
    onclick: () => drawers.toggle("nav-open"),
  }, icon("menu"));
  const membersToggle = h("button", {
    type: "button",
    class: "icon-button members-toggle",
    "data-testid": "members-toggle",
    title: "Member list",
    "aria-label": "Member list",
    onclick: () => drawers.toggleMembers(),
  }, icon("users"));
  drawers.bind("nav-open", navToggle);
  drawers.bind("members-open", membersToggle);
  const title = h("span", { class: "content-title", "data-testid": "channel-title", text: "Home" });
  const iconEl = h("span", { class: "content-icon", "aria-hidden": "true" });
  const topic = h("span", { class: "content-topic muted", "data-testid": "channel-topic" });
  // The open chat's own header controls (the thread list).
  const chatTools = h("span", { class: "chat-tools" });
  const channelMute = muteButton(notify, () => (store.state.activeServer ? store.state.activeChannel : null));
  // Pins and search of the open channel and server (views/channel-tools.js).
  const channelTools = createChannelTools({
    client,
    sync,
    current: () => openPlace(store.state),
    roleColor: (sid, uid) => roleColor(store.state, sid, uid),
  });
  const el = h("header", { class: "content-header" }, navToggle, iconEl, title, topic, chatTools, channelTools.el, channelMute.el, membersToggle);

  store.subscribe(() => channelMute.render(), SELECTION_KEYS);
  return {
    el,
    /** The mute bell again (the push rules changed). */
    render: () => channelMute.render(),
    /** Pins and search again, for the server and channel now open. */
    updateTools: () => channelTools.update(),
    /** The channel's icon, name and topic; with no channel, `name` alone (a server's, or Home). */
    show(channel, name = "Home") {
      if (!channel) {
        iconEl.replaceChildren();
        title.textContent = name;
        topic.textContent = "";
        return;
      }
      iconEl.replaceChildren(channelIcon(channel, { className: "content-channel-icon" }));
      title.textContent = channel.name;
      topic.textContent = channel.topic || "";
    },
    /** The controls a chat brings to the header (none: cleared). */
    setChatTools: (tools) => chatTools.replaceChildren(...(tools ?? [])),
  };
}
