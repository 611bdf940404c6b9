// The sidebar: the open server's name (its menu), its categories and channels with unread and
// mention badges, who is in each call, edit gears for those who manage channels, drag to reorder;
// on Home, the direct conversations. The user panel sits at its foot.

import { h } from "../dom.js";
import { channelIcon, icon, isPrivateChannel } from "../icons.js";
import { sidebarCategories, sidebarChannels } from "../channel-order.js";
import { SELECTION_KEYS, hasPermission as has } from "../store.js";
import { createCategoryFollower } from "./category-follow.js";
import { createChannelReorder } from "./channel-reorder.js";
import { loadManage, openServerMenu } from "./server-menu.js";

/**
 * @param {object} options
 * @param {{brandName: string}} options.config
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {import("../store.js").ShellStore} options.store
 * @param {string} options.userId
 * @param {ReturnType<typeof import("../notifications.js").createNotifications>} options.notify
 * @param {ReturnType<typeof import("./unread.js").createUnread>} options.unread
 * @param {any} options.calls  the channel calls (views/call-panel.js)
 * @param {{renderList: () => Node}} options.dms  the DM list shown on Home (views/dms.js)
 * @param {HTMLElement} options.userPanel
 * @param {() => object} options.manageContext  what the management dialogs are given
 * @param {(channelId: string) => void} options.onSelectChannel
 * @param {(serverId: string) => void} options.refreshServer
 * @param {(message: string) => void} options.showBanner
 */
export function createChannelSidebar(options) {
  const { config, client, sync, api, store, notify, unread, calls, dms, manageContext, onSelectChannel } = options;
  const title = h("span", { class: "sidebar-title", "data-testid": "server-name", text: config.brandName });
  const menuButton = h(
    "button",
    {
      type: "button",
      class: "sidebar-header server-menu-button",
      "data-testid": "server-menu-button",
      "aria-haspopup": "menu",
      onclick: () => openServerMenu(menuButton, options),
    },
    title,
    icon("chevron-down", { size: 18, className: "chevron" }),
  );
  const channelList = h("div", { class: "channel-list", "data-testid": "channel-list" });
  // Drag (or Alt+Arrow) to reorder channels and categories (views/channel-reorder.js).
  const reorder = createChannelReorder({
    api,
    activeServer: () => store.activeServer() ?? undefined,
    render: () => render(),
    refresh: (sid) => options.refreshServer(sid),
  });
  reorder.attach(channelList);
  // In the shown server's categories, so a move or rename made in one shows live.
  const followCategories = createCategoryFollower({ client, sync });
  const el = h("aside", { class: "sidebar", "data-testid": "sidebar" }, menuButton, reorder.el, channelList, options.userPanel);

  // The sidebar is drawn again on every sync update; the new drawing replaces the old one only
  // when it differs, so a button under the pointer is not swapped out between press and release
  // (a lost click) and keyboard focus stays put. Its handlers read the current server when run.
  function render() {
    if (reorder.dragging()) return; // drawn when the drag ends: its source must stay in place
    const fresh = h("div");
    draw(fresh);
    const now = [...channelList.childNodes];
    const next = [...fresh.childNodes];
    if (now.length === next.length && now.every((node, i) => node.isEqualNode(next[i]))) return;
    channelList.replaceChildren(...next);
  }

  function draw(list) {
    const server = reorder.shown(store.activeServer()); // a move on its way drawn over it
    if (!server) {
      title.textContent = config.brandName;
      menuButton.disabled = true;
      list.append(dms.renderList());
      return;
    }
    menuButton.disabled = false;
    title.textContent = server.name;
    calls.watchServer(server);
    followCategories(server);
    const categories = [{ category_id: null, name: "" }, ...sidebarCategories(server)];
    for (const category of categories) {
      const channels = sidebarChannels(server, category.category_id);
      if (category.category_id && channels.length === 0 && !has(server, "manage_channels")) continue;
      const section = h("section", { class: "category", "data-testid": "category", "data-category-id": category.category_id ?? "" });
      if (category.category_id) {
        section.append(
          h(
            "div",
            { class: "category-header" },
            h("h3", { class: "category-name", "data-testid": "category-name", text: category.name }),
            has(server, "manage_channels") ? editButton("category-edit", `Edit ${category.name}`, server, "openCategoryEditor", category) : null,
          ),
        );
      }
      const ul = h("ul", { class: "channels" });
      for (const channel of channels) ul.append(channelItem(server, channel));
      section.append(ul);
      list.append(section);
    }
    reorder.decorate(list, server);
  }

  function channelItem(server, channel) {
    const selected = channel.channel_id === store.state.activeChannel;
    const counts = unread.of(channel.channel_id);
    const isDefault = channel.channel_id === server.default_channel_id || channel.default;
    const li = h(
      "li",
      { class: "channel-row" },
      h(
        "button",
        {
          type: "button",
          class: `channel${selected ? " selected" : ""}${counts.notifications && !selected ? " unread" : ""}${notify.isMuted(channel.channel_id) ? " muted" : ""}`,
          "data-testid": "channel",
          "data-channel-id": channel.channel_id,
          "data-kind": channel.kind,
          "aria-current": selected ? "page" : false,
          title: channel.topic || channel.name,
          onclick: () => {
            onSelectChannel(channel.channel_id);
            const now = store.state.servers.get(server.server_id) ?? server;
            calls.join(now, currentItem(now, channel));
          },
        },
        channelIcon(channel),
        h("span", { class: "channel-name", "data-testid": "channel-name", text: channel.name }),
        isPrivateChannel(channel) ? h("span", { class: "visually-hidden", text: " (private)" }) : null,
        isDefault ? h("span", { class: "default-mark", title: "Default channel", "data-testid": "default-channel" }, icon("star", { size: 12 })) : null,
        notify.isMuted(channel.channel_id) ? h("span", { class: "muted-mark", title: "Muted", "data-testid": "channel-muted" }, icon("bell-off", { size: 12 })) : null,
        counts.highlights && !selected
          ? h("span", { class: "badge", "data-testid": "channel-badge", text: String(counts.highlights) })
          : null,
      ),
    );
    if (has(server, "manage_channels")) li.append(editButton("channel-edit", `Edit #${channel.name}`, server, "openChannelEditor", channel));
    const inCall = calls.participants(channel);
    if (inCall) li.append(inCall);
    return li;
  }

  /** The server's current version of a channel or category drawn earlier (the same id). */
  function currentItem(server, item) {
    if (item.channel_id) return (server.channels ?? []).find((c) => c.channel_id === item.channel_id) ?? item;
    if (item.category_id) return (server.categories ?? []).find((c) => c.category_id === item.category_id) ?? item;
    return item;
  }

  /** A small gear beside a channel or category, for those who may manage channels. */
  function editButton(testid, label, server, fn, item) {
    return h("button", {
      type: "button",
      class: `icon-button edit-gear ${testid}`,
      "data-testid": testid,
      title: label,
      "aria-label": label,
      onclick: async () => {
        const manage = await loadManage();
        const now = store.state.servers.get(server.server_id) ?? server;
        if (typeof manage?.[fn] === "function") manage[fn](manageContext(), now, currentItem(now, item));
      },
    }, icon("settings", { size: 16 }));
  }

  store.subscribe(render, SELECTION_KEYS);
  return { el, render };
}
