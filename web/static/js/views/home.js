// The signed-in shell, as in Discord: server rail | channel sidebar | chat | members.
//
// Servers, channels, roles and members come from the provisioning API; messages and everything
// live from the sync engine. A server is refreshed from the API whenever the Guilds state of one
// of its rooms changes in the sync, so renames, new channels and roles appear without a reload.

import { h } from "../dom.js";
import { channelIcon, icon, isPrivateChannel } from "../icons.js";
import { describeError } from "../error-messages.js";
import { GuildsApi, inviteCodeFrom } from "../guilds-api.js";
import { MatrixError } from "../matrix.js";
import { createNotifications } from "../notifications.js";
import { createPresence } from "../presence.js";
import { HOME, formatRoute, parseRoute } from "../routes.js";
import { SyncEngine, isAuthError } from "../sync.js";
import { currentTheme, toggleTheme } from "../theme.js";
import { createCallUi } from "./call-panel.js";
import { avatar } from "../avatar.js";
import { createChatView } from "./chat.js";
import { createChannelTools } from "./channel-tools.js";
import { pinTools } from "./pins.js";
import { mountDirectCalls } from "./direct-call.js";
import { createDmView } from "./dms.js";
import { awaitAutoJoin } from "./channel-join.js";
import { mountRemovalNotices } from "./removal.js";
import { installSwitcher, shellItems } from "./switcher.js";
import { showMenu } from "./popups.js";
import { createChannelReorder } from "./channel-reorder.js";
import { createCategoryFollower } from "./category-follow.js";
import { sidebarCategories, sidebarChannels } from "../channel-order.js";
import { muteButton, muteMenuEntry } from "./mute.js";

const REFRESH_DEBOUNCE_MS = 250;
// Below this width app.css has no column for the member list: it opens as a drawer instead.
const DRAWER_MEMBERS_QUERY = "(max-width: 1100px)";
// State in a server's rooms that the provisioning API's Server or member list reflects.
const SERVER_STATE = /^(chat\.guilds\.|m\.room\.(name|topic|avatar|power_levels|join_rules)$|m\.space\.)/;
/** @type {Array<[string, string, (server: any, me: string) => boolean, {danger?: boolean}]>} */
const MENU_ENTRIES = [
  ["Invite people", "openInvitePeople", (s) => has(s, "create_invites"), {}],
  ["Server settings", "openServerSettings", (s) => has(s, "manage_server"), {}],
  ["Roles", "openRoles", (s) => has(s, "manage_roles"), {}],
  ["Members", "openMembers", (s) => has(s, "kick_members") || has(s, "ban_members") || has(s, "manage_roles"), {}],
  ["Bans", "openBans", (s) => has(s, "ban_members"), {}],
  ["Create channel", "openChannelEditor", (s) => has(s, "manage_channels"), {}],
  ["Create category", "openCategoryEditor", (s) => has(s, "manage_channels"), {}],
  ["Leave server", "confirmLeave", (s, me) => s.owner !== me, { danger: true }],
  ["Delete server", "confirmDelete", (s, me) => s.owner === me, { danger: true }],
];

function has(server, permission) {
  return Boolean(server?.me?.permissions?.includes(permission));
}

/** The management dialogs, when that module is installed; null when it is not. */
let manageModule;
function loadManage() {
  manageModule ??= import("../manage/index.js").catch(() => null);
  return manageModule;
}

/**
 * @param {object} options
 * @param {{brandName: string}} options.config
 * @param {import("../matrix.js").MatrixClient} options.client  with the session's token
 * @param {{userId: string, deviceId: string, accessToken: string, homeserverUrl: string}} options.session
 * @param {(notice?: string) => void} options.onSignedOut  drops the session and shows sign-in
 */
export function renderHome({ config, client, session, onSignedOut }) {
  const api = new GuildsApi({ accessToken: session.accessToken });
  const sync = new SyncEngine(client, session.userId);
  // Voice and video channels: the call panel, who is in each call, joining by a click.
  const calls = createCallUi({ client, sync, session, api, onChange: () => activeServer && renderSidebar() });
  const userId = session.userId;
  // Presence dots on the member list (presence.js); mute and desktop notifications (notifications.js).
  const presence = createPresence({ client, sync, userId, onChange: () => renderMembers() });
  const notify = createNotifications({
    client,
    sync,
    userId,
    placeOf: (roomId) => {
      const server = servers.get(serverOfRoom(roomId));
      const channel = server?.channels?.find((c) => c.channel_id === roomId);
      return server && channel ? `in #${channel.name} (${server.name})` : "";
    },
    open: (roomId) => {
      const sid = serverOfRoom(roomId);
      if (!sid) {
        if (sync.room(roomId)) dms.openRoom(roomId); // a direct conversation
        return;
      }
      lastChannel.set(sid, roomId);
      selectServer(sid);
    },
  });

  /** @type {Map<string, object>} server id → Server */
  const servers = new Map();
  let order = [];
  const members = new Map(); // server id → [Member]
  let activeServer = null;
  let activeChannel = null;
  let chat = null;
  let myName = null;
  let serversLoaded = false;
  const lastChannel = new Map();
  const refreshTimers = new Map();
  const joining = new Set();
  // Direct conversations (views/dms.js): shown in the Home view, with their avatars in the rail.
  const dms = createDmView({
    client,
    sync,
    userId,
    onShow: () => {
      activeServer = null;
      activeChannel = null;
      setDrawer(null);
      renderAll();
    },
    onChange: () => {
      renderRail();
      if (!activeServer) renderSidebar();
    },
    toggleNav: () => setDrawer(view.classList.contains("nav-open") ? null : "nav-open"),
  });

  // --- the frame -------------------------------------------------------------------------------
  const railServers = h("div", { class: "rail-servers", "data-testid": "rail-servers" });
  const homeButton = h(
    "button",
    { type: "button", class: "rail-item home", title: "Home", "aria-label": "Home", "data-testid": "rail-home", onclick: () => selectServer(null) },
    h("span", { class: "brand-mark small", "aria-hidden": "true" }),
  );
  const addButton = h("button", {
    type: "button",
    class: "rail-item add",
    title: "Add a server",
    "aria-label": "Add a server",
    "data-testid": "add-server",
    onclick: () => openCreate(),
  }, icon("plus", { size: 24 }));
  const rail = h(
    "nav",
    { class: "server-rail", "aria-label": "Servers", "data-testid": "server-rail" },
    homeButton,
    dms.railEl,
    h("div", { class: "rail-separator", "aria-hidden": "true" }),
    railServers,
    addButton,
  );

  const sidebarTitle = h("span", { class: "sidebar-title", "data-testid": "server-name", text: config.brandName });
  const serverMenuButton = h(
    "button",
    { type: "button", class: "sidebar-header server-menu-button", "data-testid": "server-menu-button", "aria-haspopup": "menu", onclick: () => openServerMenu() },
    sidebarTitle,
    icon("chevron-down", { size: 18, className: "chevron" }),
  );
  const channelList = h("div", { class: "channel-list", "data-testid": "channel-list" });

  const panelName = h("span", { class: "user-panel-name", "data-testid": "display-name" });
  const panelAvatar = h("div", { class: "user-panel-avatar", "data-testid": "user-panel-avatar" });
  const themeButton = h("button", {
    type: "button",
    class: "icon-button",
    "data-testid": "theme-toggle",
    onclick: () => {
      toggleTheme();
      showTheme();
    },
  });
  const signOut = h("button", {
    type: "button",
    class: "icon-button danger",
    "data-testid": "sign-out",
    title: "Sign out",
    "aria-label": "Sign out",
    onclick: onSignOut,
  }, icon("log-out"));
  const userPanel = h(
    "footer",
    { class: "user-panel" },
    panelAvatar,
    h(
      "div",
      { class: "user-panel-text" },
      panelName,
      h("span", { class: "user-panel-id muted", text: userId }),
      h("span", { class: "visually-hidden", "data-testid": "signed-in-as", text: `Signed in as ${userId}` }),
    ),
    notify.permissionButton,
    themeButton,
    signOut,
  );
  // Drag (or Alt+Arrow) to reorder channels and categories (views/channel-reorder.js).
  const reorder = createChannelReorder({
    api,
    activeServer: () => servers.get(activeServer),
    render: () => renderSidebar(),
    refresh: (sid) => refreshServer(sid),
  });
  reorder.attach(channelList);
  // In the shown server's categories, so a move or rename made in one shows live.
  const followCategories = createCategoryFollower({ client, sync });
  const sidebar = h("aside", { class: "sidebar", "data-testid": "sidebar" }, serverMenuButton, reorder.el, channelList, userPanel);

  const navToggle = h("button", {
    type: "button",
    class: "icon-button nav-toggle",
    "data-testid": "nav-toggle",
    "aria-label": "Open the server and channel menu",
    "aria-expanded": "false",
    onclick: () => setDrawer(view.classList.contains("nav-open") ? null : "nav-open"),
  }, icon("menu"));
  const membersToggle = h("button", {
    type: "button",
    class: "icon-button members-toggle",
    "data-testid": "members-toggle",
    title: "Member list",
    "aria-label": "Member list",
    onclick: () => {
      // Beside the chat on a wide window; a drawer over it where the list has no room.
      if (window.matchMedia(DRAWER_MEMBERS_QUERY).matches) {
        setDrawer(view.classList.contains("members-open") ? null : "members-open");
      } else {
        view.classList.toggle("members-hidden");
      }
    },
  }, icon("users"));
  const contentTitle = h("span", { class: "content-title", "data-testid": "channel-title", text: "Home" });
  const contentIcon = h("span", { class: "content-icon", "aria-hidden": "true" });
  const contentTopic = h("span", { class: "content-topic muted", "data-testid": "channel-topic" });
  // The open chat's own header controls (the thread list).
  const chatTools = h("span", { class: "chat-tools" });
  const channelMute = muteButton(notify, () => (activeServer ? activeChannel : null));
  // Pins and search of the open channel and server (views/channel-tools.js).
  const channelTools = createChannelTools({ client, sync, current: openPlace, roleColor });
  const connection = h("div", { class: "connection", role: "status", "data-testid": "connection-status" });
  connection.hidden = true;
  const banner = h("p", { class: "banner", role: "status", "data-testid": "home-banner" });
  banner.hidden = true;
  // Why a link did not open what it named (a channel one cannot see); gone on the next move.
  const routeNotice = h("p", { class: "banner", role: "status", "data-testid": "route-notice" });
  routeNotice.hidden = true;
  const body = h("div", { class: "content-body" });
  const content = h(
    "main",
    { class: "content" },
    h("header", { class: "content-header" }, navToggle, contentIcon, contentTitle, contentTopic, chatTools, channelTools.el, channelMute.el, membersToggle),
    connection,
    banner,
    routeNotice,
    calls.panel,
    body,
  );
  const memberList = h("aside", { class: "members", "data-testid": "member-list", "aria-label": "Members" });
  const scrim = h("div", { class: "scrim", "data-testid": "scrim", onclick: () => setDrawer(null) });
  const view = h("div", { class: "shell", "data-testid": "home-view" }, rail, sidebar, content, memberList, scrim);

  // --- drawers on small screens (app.css folds the rail, sidebar and members away) -----------
  /** Open one drawer ("nav-open" or "members-open") and close the other, or close both. */
  function setDrawer(name) {
    for (const [cls, toggle] of [["nav-open", navToggle], ["members-open", membersToggle]]) {
      view.classList.toggle(cls, cls === name);
      toggle.setAttribute("aria-expanded", String(cls === name));
    }
  }
  view.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.matches(".nav-open, .members-open")) setDrawer(null);
  });

  // --- helpers -------------------------------------------------------------------------------
  function manageContext() {
    return {
      session,
      api,
      matrix: client,
      refresh: (sid) => (sid ? refreshServer(sid) : refreshServers()),
      selectServer: async (sid) => {
        // A server just joined may not be listed by the bridge yet: it opens once it is.
        requestedServer = sid;
        await refreshServers();
      },
      onServerGone: (sid) => {
        removeServer(sid);
        refreshServers();
      },
      openChannel: (sid, cid) => {
        lastChannel.set(sid, cid);
        const listed = servers.get(sid)?.channels?.some((c) => c.channel_id === cid);
        if (listed) selectServer(sid);
      },
    };
  }

  async function openCreate() {
    const manage = await loadManage();
    if (manage?.openCreateServer) manage.openCreateServer(manageContext());
    else selectServer(null);
  }

  function showTheme() {
    const dark = currentTheme() === "dark";
    themeButton.replaceChildren(icon(dark ? "sun" : "moon"));
    themeButton.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
    themeButton.setAttribute("aria-label", themeButton.title);
  }

  function showBanner(message) {
    banner.textContent = message;
    banner.hidden = !message;
  }

  function serverIcon(server, className) {
    const el = avatar(client, { mxc: server.icon, name: server.name, id: server.server_id, size: 48, className });
    return el;
  }

  function unreadOf(roomId) {
    // A muted room shows nothing, even what was counted before it was muted.
    if (notify.isMuted(roomId)) return { notifications: 0, highlights: 0 };
    return sync.room(roomId)?.unread ?? { notifications: 0, highlights: 0 };
  }

  function serverUnread(server) {
    let notifications = 0;
    let highlights = 0;
    for (const channel of server.channels ?? []) {
      if (channel.channel_id === activeChannel && document.hasFocus()) continue;
      const u = unreadOf(channel.channel_id);
      notifications += u.notifications;
      highlights += u.highlights;
    }
    return { notifications, highlights };
  }

  /** The server and channel open, for the header's tools; null on Home. */
  function openPlace() {
    const server = servers.get(activeServer) ?? null;
    if (!server) return null;
    return { server, channel: server.channels?.find((c) => c.channel_id === activeChannel) ?? null };
  }

  function roleColor(sid, uid) {
    const server = servers.get(sid);
    const member = (members.get(sid) ?? []).find((m) => m.user_id === uid);
    if (!server || !member) return null;
    const roles = (server.roles ?? [])
      .filter((r) => member.roles.includes(r.role_id) && /^#[0-9a-f]{6}$/i.test(r.color ?? ""))
      .sort((a, b) => b.position - a.position);
    return roles[0]?.color ?? null;
  }

  // --- rail ----------------------------------------------------------------------------------
  function renderRail() {
    homeButton.classList.toggle("selected", activeServer === null);
    dms.renderRail();
    railServers.replaceChildren(
      ...order
        .map((sid) => servers.get(sid))
        .filter(Boolean)
        .map((server) => {
          const unread = serverUnread(server);
          const selected = server.server_id === activeServer;
          return h(
            "button",
            {
              type: "button",
              class: `rail-item server${selected ? " selected" : ""}${unread.notifications ? " unread" : ""}${notify.isServerMuted(server.server_id) ? " muted" : ""}`,
              "data-testid": "rail-server",
              "data-server-id": server.server_id,
              title: server.name,
              "aria-label": server.name,
              "aria-current": selected ? "page" : false,
              onclick: () => selectServer(server.server_id),
            },
            serverIcon(server, "rail-icon"),
            h("span", { class: "rail-tooltip", role: "tooltip", text: server.name }),
            unread.highlights
              ? h("span", { class: "badge", "data-testid": "server-badge", text: String(unread.highlights) })
              : null,
          );
        }),
    );
  }

  // --- sidebar -------------------------------------------------------------------------------
  // The sidebar is drawn again on every sync update; the new drawing replaces the old one only
  // when it differs, so a button under the pointer is not swapped out between press and release
  // (a lost click) and keyboard focus stays put. Its handlers read the current server when run.
  function renderSidebar() {
    if (reorder.dragging()) return; // drawn when the drag ends: its source must stay in place
    const fresh = h("div");
    drawSidebar(fresh);
    const now = [...channelList.childNodes];
    const next = [...fresh.childNodes];
    if (now.length === next.length && now.every((node, i) => node.isEqualNode(next[i]))) return;
    channelList.replaceChildren(...next);
  }

  function drawSidebar(list) {
    const server = reorder.shown(servers.get(activeServer)); // a move on its way drawn over it
    if (!server) {
      sidebarTitle.textContent = config.brandName;
      serverMenuButton.disabled = true;
      list.append(dms.renderList());
      return;
    }
    serverMenuButton.disabled = false;
    sidebarTitle.textContent = server.name;
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
      for (const channel of channels) ul.append(renderChannelItem(server, channel));
      section.append(ul);
      list.append(section);
    }
    reorder.decorate(list, server);
  }

  function renderChannelItem(server, channel) {
    const selected = channel.channel_id === activeChannel;
    const unread = unreadOf(channel.channel_id);
    const isDefault = channel.channel_id === server.default_channel_id || channel.default;
    const li = h(
      "li",
      { class: "channel-row" },
      h(
        "button",
        {
          type: "button",
          class: `channel${selected ? " selected" : ""}${unread.notifications && !selected ? " unread" : ""}${notify.isMuted(channel.channel_id) ? " muted" : ""}`,
          "data-testid": "channel",
          "data-channel-id": channel.channel_id,
          "data-kind": channel.kind,
          "aria-current": selected ? "page" : false,
          title: channel.topic || channel.name,
          onclick: () => {
            selectChannel(channel.channel_id);
            const now = servers.get(server.server_id) ?? server;
            calls.join(now, currentItem(now, channel));
          },
        },
        channelIcon(channel),
        h("span", { class: "channel-name", "data-testid": "channel-name", text: channel.name }),
        isPrivateChannel(channel) ? h("span", { class: "visually-hidden", text: " (private)" }) : null,
        isDefault ? h("span", { class: "default-mark", title: "Default channel", "data-testid": "default-channel" }, icon("star", { size: 12 })) : null,
        notify.isMuted(channel.channel_id) ? h("span", { class: "muted-mark", title: "Muted", "data-testid": "channel-muted" }, icon("bell-off", { size: 12 })) : null,
        unread.highlights && !selected
          ? h("span", { class: "badge", "data-testid": "channel-badge", text: String(unread.highlights) })
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
        const now = servers.get(server.server_id) ?? server;
        if (typeof manage?.[fn] === "function") manage[fn](manageContext(), now, currentItem(now, item));
      },
    }, icon("settings", { size: 16 }));
  }

  async function openServerMenu() {
    const server = servers.get(activeServer);
    if (!server) return;
    const manage = await loadManage();
    /** @type {Array<[string, () => void, {danger?: boolean, testid?: string}]>} */
    const entries = [];
    for (const [label, fn, allowed, options] of MENU_ENTRIES) {
      if (!manage || typeof manage[fn] !== "function" || !allowed(server, userId)) continue;
      const testid = `menu-${fn}`;
      entries.push([label, () => manage[fn](manageContext(), servers.get(server.server_id) ?? server), { ...options, testid }]);
    }
    // Everyone may mute a server: before leaving or deleting it, as in Discord.
    const danger = entries.findIndex(([, , options]) => options.danger);
    entries.splice(danger < 0 ? entries.length : danger, 0, muteMenuEntry(notify, server, (message) => showBanner(message)));
    showMenu(serverMenuButton, entries, { testid: "server-menu" });
  }

  // --- members -------------------------------------------------------------------------------
  function renderMembers() {
    const server = servers.get(activeServer);
    memberList.replaceChildren();
    // Whether dots are drawn: "off" when the homeserver has presence disabled (presence.js).
    memberList.dataset.presence = presence.enabled === null ? "unknown" : presence.enabled ? "on" : "off";
    if (!server) return;
    const list = members.get(activeServer) ?? [];
    const roles = [...(server.roles ?? [])].sort((a, b) => b.position - a.position);
    const groups = new Map();
    for (const member of list) {
      const top = roles.find((r) => member.roles.includes(r.role_id) && r.role_id !== "member") ?? null;
      const key = top?.role_id ?? "member";
      if (!groups.has(key)) groups.set(key, { role: top, members: [] });
      groups.get(key).members.push(member);
    }
    const ordered = [...groups.values()].sort((a, b) => (b.role?.position ?? -1e9) - (a.role?.position ?? -1e9));
    for (const group of ordered) {
      const label = group.role ? group.role.name : "Members";
      memberList.append(h("h3", { class: "member-group", text: `${label} — ${group.members.length}` }));
      const sorted = group.members.sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
      for (const member of sorted) {
        const name = h("span", { class: "member-name", "data-testid": "member-name", text: nameOf(member) });
        const color = roleColor(activeServer, member.user_id);
        if (color) name.style.color = color;
        memberList.append(
          h(
            "div",
            {
              class: "member",
              "data-testid": "member",
              "data-user-id": member.user_id,
              title: member.user_id,
              role: "button",
              tabindex: "0",
              onclick: (e) => showMemberProfile(e.currentTarget, member),
              onkeydown: (e) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  showMemberProfile(e.currentTarget, member);
                }
              },
            },
            presence.withDot(avatar(client, { mxc: member.avatar, name: nameOf(member), id: member.user_id, size: 32 }), member.user_id),
            name,
            member.owner ? h("span", { class: "owner-mark", title: "Server owner", "data-testid": "owner-mark" }, icon("crown", { size: 14 })) : null,
          ),
        );
      }
    }
  }

  function showMemberProfile(anchor, member) {
    dms.showProfile(anchor, { userId: member.user_id, name: nameOf(member), avatar: member.avatar });
  }

  function nameOf(member) {
    return member.display_name || member.user_id.replace(/^@/, "").split(":")[0];
  }

  async function loadMembers(sid) {
    try {
      members.set(sid, await api.allMembers(sid));
      if (sid === activeServer) {
        renderMembers();
        chat?.render();
      }
    } catch (error) {
      console.warn("members failed to load", error);
    }
  }

  // --- content -------------------------------------------------------------------------------
  function renderContent() {
    const server = servers.get(activeServer);
    const channel = server?.channels?.find((c) => c.channel_id === activeChannel) ?? null;
    view.classList.remove("dm-mode");
    channelTools.update();
    const dmPane = server ? null : dms.content(chat);
    if (dmPane) {
      view.classList.add("no-server", "dm-mode");
      if (dmPane !== chat) {
        replaceChat(dmPane);
        body.replaceChildren(dmPane.el);
      }
      dmPane.render();
      if (window.matchMedia("(min-width: 761px)").matches) dmPane.focus();
      return;
    }
    if (!server) {
      contentIcon.replaceChildren();
      contentTitle.textContent = "Home";
      contentTopic.textContent = "";
      replaceChat(null);
      body.replaceChildren(renderWelcome());
      view.classList.add("no-server");
      return;
    }
    view.classList.remove("no-server");
    if (!channel) {
      contentIcon.replaceChildren();
      contentTitle.textContent = server.name;
      contentTopic.textContent = "";
      replaceChat(null);
      body.replaceChildren(h("div", { class: "empty-state muted", text: "No channel you can see here yet." }));
      return;
    }
    contentIcon.replaceChildren(channelIcon(channel, { className: "content-channel-icon" }));
    contentTitle.textContent = channel.name;
    contentTopic.textContent = channel.topic || "";
    if (chat && chat.roomId === channel.channel_id) {
      chat.render();
      return;
    }
    if (!sync.room(channel.channel_id)) {
      replaceChat(null);
      body.replaceChildren(h("div", { class: "empty-state muted", "data-testid": "joining", text: `Joining #${channel.name}…` }));
      // Before the first sync the channel may be joined already (the servers often answer
      // first): join only if it is still missing then, not with a wasted /join on every boot.
      sync.firstSync.then(() => {
        if (activeChannel === channel.channel_id && !sync.room(channel.channel_id)) joinChannel(channel);
      });
      return;
    }
    const chatView = createChatView({
      client,
      sync,
      userId,
      roomId: channel.channel_id,
      channel,
      server: () => servers.get(activeServer) ?? null,
      roleColor: (uid) => roleColor(activeServer, uid),
      people: () => {
        const server = servers.get(activeServer);
        return server ? { members: members.get(activeServer) ?? [], roles: server.roles ?? [] } : null;
      },
      messageTools: pinTools({ client, sync, roomId: channel.channel_id, mayPin: () => has(servers.get(activeServer), "manage_messages") }),
      onUserClick: (uid, anchor) => {
        const member = (members.get(activeServer) ?? []).find((m) => m.user_id === uid);
        const room = sync.room(channel.channel_id);
        dms.showProfile(anchor, { userId: uid, name: member ? nameOf(member) : room?.displayName(uid), avatar: member?.avatar ?? room?.avatarOf(uid) });
      },
    });
    chatView.roomId = channel.channel_id;
    replaceChat(chatView);
    body.replaceChildren(chatView.el);
    if (linkedEvent) chatView.reveal(linkedEvent);
    else chatView.render();
    if (window.matchMedia("(min-width: 761px)").matches) chatView.focus();
  }

  function replaceChat(next) {
    chat?.destroy();
    chat = next;
    chatTools.replaceChildren(...(next?.tools ?? []));
  }

  async function joinChannel(channel) {
    if (joining.has(channel.channel_id)) return;
    joining.add(channel.channel_id);
    try {
      if (await awaitAutoJoin(sync, channel.channel_id, userId)) return;
      await client.joinRoom(channel.channel_id);
      // The room appears in the next sync; renderContent runs again then.
    } catch (error) {
      if (activeChannel === channel.channel_id) {
        body.replaceChildren(
          h("div", { class: "empty-state" }, h("p", { class: "form-error", text: `Could not join #${channel.name}: ${describeError(error)}` })),
        );
      }
    } finally {
      joining.delete(channel.channel_id);
    }
  }

  function renderWelcome() {
    const code = h("input", {
      type: "text",
      "data-testid": "join-code",
      placeholder: "https://…/invite/hTKzmak or hTKzmak",
      "aria-label": "Invite link or code",
    });
    const error = h("p", { class: "form-error", role: "alert", "data-testid": "join-error" });
    error.hidden = true;
    const joinButton = h("button", { type: "submit", class: "button primary", "data-testid": "join-submit", text: "Join" });
    const form = h(
      "form",
      {
        class: "join-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const parsed = inviteCodeFrom(code.value);
          error.hidden = true;
          if (!parsed) {
            error.textContent = "Enter a valid invite link or code.";
            error.hidden = false;
            return;
          }
          joinButton.disabled = true;
          try {
            const { server_id: sid } = await api.redeemInvite(parsed);
            await client.joinRoom(sid);
            requestedServer = sid;
            await refreshServers();
          } catch (err) {
            error.textContent = describeError(err);
            error.hidden = false;
          } finally {
            joinButton.disabled = false;
          }
        },
      },
      h("label", { class: "field-label", text: "Have an invite? Paste it here" }),
      h("div", { class: "join-row" }, code, joinButton),
      error,
    );
    const hasServers = order.length > 0;
    return h(
      "section",
      { class: "welcome", "data-testid": hasServers ? "home-screen" : "create-or-join" },
      h(
        "div",
        { class: "card welcome-card" },
        h("div", { class: "brand-mark", "aria-hidden": "true" }),
        h("h1", { class: "welcome-name", text: hasServers ? `Welcome back, ${myName ?? userId}` : `Welcome to ${config.brandName}!` }),
        h("p", {
          class: "muted",
          text: hasServers
            ? "Pick a server on the left, create another one, or join with an invite."
            : "Servers are where you and your friends hang out. Create one, or join one with an invite.",
        }),
        h("button", { type: "button", class: "button primary wide", "data-testid": "create-server", text: "Create a server", onclick: () => openCreate() }),
        h("div", { class: "or", text: "or" }),
        form,
      ),
    );
  }

  // --- selection -----------------------------------------------------------------------------
  /** Open a server (null: Home); `eventId`, a message a link named in the channel it opens. */
  function selectServer(sid, eventId = null) {
    if (sid && !servers.has(sid)) sid = null;
    linkedEvent = eventId;
    dms.close();
    activeServer = sid;
    const server = servers.get(sid);
    activeChannel = server ? pickChannel(server) : null;
    // On a phone the menu stays open on the server just picked, to choose one of its channels.
    setDrawer(view.classList.contains("nav-open") ? "nav-open" : null);
    renderAll();
    if (sid && !members.has(sid)) loadMembers(sid);
  }

  function pickChannel(server) {
    const remembered = lastChannel.get(server.server_id);
    const visible = server.channels ?? [];
    if (remembered && visible.some((c) => c.channel_id === remembered)) return remembered;
    if (visible.some((c) => c.channel_id === server.default_channel_id)) return server.default_channel_id;
    return visible.find((c) => c.kind === "text")?.channel_id ?? visible[0]?.channel_id ?? null;
  }

  function selectChannel(cid) {
    activeChannel = cid;
    linkedEvent = null;
    if (activeServer) lastChannel.set(activeServer, cid);
    setDrawer(null);
    renderAll();
  }

  function renderAll() {
    channelMute.render();
    renderRail();
    renderSidebar();
    calls.showing(activeServer ? activeChannel : null);
    renderContent();
    renderMembers();
    writeAddress();
  }

  // --- the address: deep links, reload, Back and Forward (routes.js) --------------------------
  /** Put what is open in the address: a new history entry for a move, else the same one. */
  function writeAddress() {
    if (!firstSelectionDone) return; // the address still names what is yet to be opened
    const hash = formatRoute({ serverId: activeServer, channelId: activeServer ? activeChannel : null, eventId: linkedEvent });
    const replace = replaceAddress;
    replaceAddress = false;
    if (hash === location.hash) return;
    // A move of the person's own ends what a link's notice said; correcting a link keeps it.
    if (!replace) routeNotice.hidden = true;
    const url = location.pathname + location.search + hash;
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }

  /**
   * Open what an address names; what cannot be opened is said, and the server's default
   * channel (or the first server) opened instead. The address is then corrected in place.
   */
  function openRoute(route) {
    replaceAddress = true;
    routeNotice.hidden = true;
    if (!route.serverId) {
      if (activeServer) selectServer(null);
      else writeAddress();
      return;
    }
    const server = servers.get(route.serverId);
    if (!server) {
      showRouteNotice("That link is to a server you are not a member of, or one that no longer exists.");
      selectServer(activeServer ?? order[0] ?? null);
      return;
    }
    const visible = (server.channels ?? []).some((c) => c.channel_id === route.channelId);
    if (route.channelId && !visible) {
      lastChannel.delete(server.server_id);
      const fallback = server.channels?.find((c) => c.channel_id === pickChannel(server));
      showRouteNotice(
        `That link is to a channel of ${server.name} that does not exist or that you cannot see` +
          (fallback ? `: here is #${fallback.name}.` : "."),
      );
    } else if (route.channelId) {
      lastChannel.set(server.server_id, route.channelId);
    }
    const eventId = visible ? route.eventId : null;
    selectServer(server.server_id, eventId);
    if (eventId && chat?.roomId === route.channelId) chat.reveal(eventId);
  }

  function showRouteNotice(text) {
    routeNotice.textContent = text;
    routeNotice.hidden = false;
  }

  function onPopState() {
    if (!view.isConnected) {
      window.removeEventListener("popstate", onPopState);
      return;
    }
    if (!firstSelectionDone) return;
    openRoute(parseRoute(location.hash) ?? HOME);
  }
  window.addEventListener("popstate", onPopState);

  // --- servers from the provisioning API -------------------------------------------------------
  async function refreshServers() {
    try {
      const list = await api.listServers();
      const loaded = await Promise.all(
        list.map((summary) => api.getServer(summary.server_id).catch(() => null)),
      );
      const next = new Map();
      for (const server of loaded) if (server) next.set(server.server_id, server);
      servers.clear();
      for (const [sid, server] of next) servers.set(sid, server);
      order = list.map((s) => s.server_id).filter((sid) => servers.has(sid));
      serversLoaded = true;
      showBanner("");
      if (activeServer && !servers.has(activeServer)) activeServer = null;
      if (requestedServer && servers.has(requestedServer)) {
        // A deep link, or arrived from an invite landing page: open the server (and channel).
        const route = requestedRoute ?? { serverId: requestedServer, channelId: null, eventId: null };
        requestedServer = null;
        requestedRoute = null;
        firstSelectionDone = true;
        openRoute(route);
        return;
      }
      if (activeServer === null && !firstSelectionDone && order.length) {
        firstSelectionDone = true;
        // A link to a server not listed opens it later if a refresh lists it; an invite's join
        // the bridge has not seen yet is no news to the person, any other link is.
        if (requestedRoute && !arrivedFromInvite) {
          showRouteNotice("That link is to a server you are not a member of, or one that no longer exists.");
        }
        replaceAddress = true;
        selectServer(order[0]);
        return;
      }
      if (!firstSelectionDone) replaceAddress = true;
      firstSelectionDone = true;
      if (activeServer) {
        const server = servers.get(activeServer);
        if (!server.channels.some((c) => c.channel_id === activeChannel)) activeChannel = pickChannel(server);
      }
      renderAll();
    } catch (error) {
      if (isAuthError(error)) {
        onSignedOut("Your session has ended. Sign in again.");
        return;
      }
      console.warn("servers failed to load", error);
      if (!serversLoaded) renderAll();
    }
  }
  let firstSelectionDone = false;
  // The address opened with (routes.js): a deep link `#/server/<id>/channel/<id>`, or
  // `#server=<id>` where the invite landing page sends people after they join. It may name a
  // server the bridge has not seen the join of yet: kept until a refresh lists it.
  const arrivedFromInvite = location.hash.startsWith("#server=");
  let requestedRoute = parseRoute(location.hash);
  if (requestedRoute && !requestedRoute.serverId) requestedRoute = null;
  let requestedServer = requestedRoute?.serverId ?? null;
  let linkedEvent = null; // the message the address names, while its channel stays open
  let replaceAddress = true; // the next address written replaces the entry (not a move of the person)

  async function refreshServer(sid) {
    try {
      const server = await api.getServer(sid);
      servers.set(sid, server);
      if (!order.includes(sid)) order.push(sid);
      if (sid === activeServer && !server.channels.some((c) => c.channel_id === activeChannel)) {
        activeChannel = pickChannel(server);
      }
      renderAll();
      if (sid === activeServer) loadMembers(sid);
    } catch (error) {
      if (error instanceof MatrixError && (error.status === 404 || error.status === 403)) {
        removeServer(sid);
        return;
      }
      console.warn("server failed to refresh", error);
    }
  }

  function removeServer(sid) {
    servers.delete(sid);
    members.delete(sid);
    order = order.filter((x) => x !== sid);
    if (activeServer === sid) {
      activeServer = null;
      activeChannel = null;
    }
    renderAll();
  }

  function scheduleRefresh(sid) {
    clearTimeout(refreshTimers.get(sid));
    refreshTimers.set(
      sid,
      setTimeout(() => {
        refreshTimers.delete(sid);
        if (sid === "*") refreshServers();
        else refreshServer(sid);
      }, REFRESH_DEBOUNCE_MS),
    );
  }

  function serverOfRoom(roomId) {
    if (servers.has(roomId)) return roomId;
    for (const [sid, server] of servers) {
      if (server.channels?.some((c) => c.channel_id === roomId)) return sid;
      if (server.categories?.some((c) => c.category_id === roomId)) return sid;
    }
    return null;
  }

  function onSyncUpdate(event) {
    const { rooms, state, membership } = event.detail;
    let all = membership && serversLoaded;
    for (const [roomId, types] of state) {
      const sid = serverOfRoom(roomId);
      const relevant = [...types].some((t) => SERVER_STATE.test(t));
      const isSpace = sid === roomId;
      const roleRoom = sync.room(roomId)?.isRoleRoom === true;
      if (relevant || ((isSpace || roleRoom) && types.has("m.room.member"))) {
        if (sid) scheduleRefresh(sid);
        else all = true;
      }
      if (isSpace && types.has("m.room.member") && sid === activeServer) loadMembers(sid);
    }
    // A server we left (kicked, banned, deleted) disappears at once.
    for (const sid of [...servers.keys()]) {
      if (serversLoaded && !sync.rooms.has(sid) && sync.status === "online" && membership) removeServer(sid);
    }
    if (all) scheduleRefresh("*");
    for (const [sid, server] of servers) if (notify.isServerMuted(sid)) notify.catchUp(server);
    channelMute.render();
    renderRail();
    if (activeServer || dms.touches(event.detail)) renderSidebar();
    if (!activeServer && dms.active && chat?.key !== dms.key()) renderContent();
    else if (chat && (rooms.has(chat.roomId) || state.has(chat.roomId))) chat.render();
    else if (activeChannel && !chat && sync.room(activeChannel)) renderContent();
  }

  function onStatus(event) {
    const status = event.detail;
    connection.hidden = status !== "reconnecting";
    connection.textContent = status === "reconnecting" ? "Connection lost — reconnecting…" : "";
    view.dataset.sync = status;
  }

  // --- account -------------------------------------------------------------------------------
  /** The user panel: name and avatar, the same avatar as in messages and the member list. */
  function showName(name, mxc = null) {
    myName = name;
    const shown = name || userId;
    panelName.textContent = shown;
    panelAvatar.replaceChildren(avatar(client, { mxc, name: shown, id: userId, size: 32 }));
  }

  async function onSignOut() {
    signOut.disabled = true;
    directCalls.calls.destroy();
    await calls.destroy();
    sync.stop();
    let notice = "";
    try {
      await client.logout();
    } catch (err) {
      if (!(err instanceof MatrixError && err.errcode === "M_UNKNOWN_TOKEN")) {
        console.warn("logout failed", err);
        notice = `Signed out on this device, but the homeserver was not told: ${describeError(err)}`;
      }
    }
    onSignedOut(notice);
  }

  /** Check the stored token still works, fetch the display name, then start syncing. */
  async function boot() {
    try {
      // Asked beside whoami, not after it: one round trip less before the first sync.
      const name = client.getDisplayName(userId);
      name.catch(() => {}); // whoami's failure is the one reported
      // The avatar is a nicety: without it the panel shows initials, as everywhere else.
      const picture = client.getProfile(userId).then((p) => (typeof p.avatar_url === "string" ? p.avatar_url : null), () => null);
      const me = await client.whoami();
      if (me.user_id !== userId) {
        onSignedOut("Your session belongs to another account. Sign in again.");
        return;
      }
      showName(await name, await picture);
      showBanner("");
    } catch (err) {
      if (isAuthError(err)) {
        onSignedOut("Your session has ended. Sign in again.");
        return;
      }
      console.warn("could not load the profile", err);
      showBanner(describeError(err));
    }
    sync.addEventListener("update", onSyncUpdate);
    sync.addEventListener("status", onStatus);
    sync.addEventListener("signedout", () => onSignedOut("Your session has ended. Sign in again."));
    sync.start();
    refreshServers();
  }

  view.addEventListener("read", () => {
    renderRail();
    renderSidebar();
  });
  window.addEventListener("focus", () => renderRail());

  // What a kicked or banned member is told (views/removal.js).
  view.append(mountRemovalNotices({ sync, userId }).el);

  // 1:1 calls in direct conversations (views/direct-call.js): ringing and the call panel.
  const directCalls = mountDirectCalls({ client, sync, userId });
  view.append(directCalls.el);

  showName(null);
  showTheme();
  renderAll();
  boot();
  // For the tests and for debugging in the console: the live state, read-only by convention.
  // The quick switcher (views/switcher.js): Ctrl+K or ⌘+K.
  const switcher = installSwitcher({
    root: view,
    items: () =>
      shellItems({
        client,
        userId,
        servers,
        order,
        members,
        dms,
        activeServer,
        jumpToChannel: (sid, cid) => {
          lastChannel.set(sid, cid);
          selectServer(sid);
        },
        selectServer,
      }),
    // People are searched in every server's member list: load those not loaded yet.
    onOpen: () => {
      for (const sid of order) if (!members.has(sid)) loadMembers(sid).then(() => switcher.refresh());
    },
  });
  view.guilds = { sync, servers, calls };
  return view;
}
