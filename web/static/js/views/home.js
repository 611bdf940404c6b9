// The signed-in shell, as in Discord: server rail | channel sidebar | chat | members.
//
// Servers, channels, roles and members come from the provisioning API; messages and everything
// live from the sync engine. What is open, and the servers and members shown, are in one store
// (store.js) that each part reads and subscribes to; this module builds the parts and wires them.
//
// The parts: server-rail.js, channel-sidebar.js (with server-menu.js and user-panel.js),
// content-header.js, channel-pane.js (with welcome.js and chat.js), member-list.js, drawers.js;
// server-refresh.js keeps the servers current, address.js keeps the address and what is open
// together.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { GuildsApi } from "../guilds-api.js";
import { MatrixError } from "../matrix.js";
import { createNotifications } from "../notifications.js";
import { createPresence } from "../presence.js";
import { SELECTION_KEYS, ShellStore, serverOfRoom } from "../store.js";
import { SyncEngine, isAuthError } from "../sync.js";
import { createAddress } from "./address.js";
import { createCallUi } from "./call-panel.js";
import { createChannelPane } from "./channel-pane.js";
import { createChannelSidebar } from "./channel-sidebar.js";
import { createContentHeader } from "./content-header.js";
import { mountDirectCalls } from "./direct-call.js";
import { createDmView } from "./dms.js";
import { createDrawers } from "./drawers.js";
import { createMemberList } from "./member-list.js";
import { mountRemovalNotices } from "./removal.js";
import { createServerRail } from "./server-rail.js";
import { createServerRefresh } from "./server-refresh.js";
import { loadManage } from "./server-menu.js";
import { installSwitcher, shellItems } from "./switcher.js";
import { createUnread } from "./unread.js";
import { createUserPanel } from "./user-panel.js";
import { renderWelcome } from "./welcome.js";

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
  const userId = session.userId;
  const store = new ShellStore();
  const view = h("div", { class: "shell", "data-testid": "home-view" });
  const drawers = createDrawers(view);

  // Voice and video channels: the call panel, who is in each call, joining by a click.
  const calls = createCallUi({ client, sync, session, api, onChange: () => store.state.activeServer && sidebar.render() });
  // Presence dots on the member list (presence.js); mute and desktop notifications (notifications.js).
  const presence = createPresence({ client, sync, userId, onChange: () => memberList.render() });
  const notify = createNotifications({
    client,
    sync,
    userId,
    placeOf: (roomId) => {
      const server = store.state.servers.get(serverOfRoom(store.state, roomId));
      const channel = server?.channels?.find((c) => c.channel_id === roomId);
      return server && channel ? `in #${channel.name} (${server.name})` : "";
    },
    open: (roomId) => {
      const sid = serverOfRoom(store.state, roomId);
      if (!sid) {
        if (sync.room(roomId)) dms.openRoom(roomId); // a direct conversation
        return;
      }
      store.rememberChannel(sid, roomId);
      selectServer(sid);
    },
  });
  // Direct conversations (views/dms.js): shown in the Home view, with their avatars in the rail.
  const dms = createDmView({
    client,
    sync,
    userId,
    onShow: () => {
      drawers.set(null);
      store.showHome();
    },
    onChange: () => {
      rail.render();
      if (!store.state.activeServer) sidebar.render();
    },
    toggleNav: () => drawers.toggle("nav-open"),
  });
  const unread = createUnread({ sync, notify, store });
  const connection = h("div", { class: "connection", role: "status", "data-testid": "connection-status" });
  connection.hidden = true;
  const banner = h("p", { class: "banner", role: "status", "data-testid": "home-banner" });
  banner.hidden = true;
  const showBanner = (message) => {
    banner.textContent = message;
    banner.hidden = !message;
  };

  // --- the parts, created in the order they draw when what is open changes -------------------
  const header = createContentHeader({ client, sync, store, notify, drawers });
  const rail = createServerRail({ client, store, unread, notify, dms, onSelect: (sid) => chooseServer(sid), onAdd: () => openCreate() });
  const userPanel = createUserPanel({ client, store, userId, permissionButton: notify.permissionButton, onSignOut });
  const sidebar = createChannelSidebar({
    config,
    client,
    sync,
    api,
    store,
    userId,
    notify,
    unread,
    calls,
    dms,
    userPanel: userPanel.el,
    manageContext,
    onSelectChannel: selectChannel,
    refreshServer: (sid) => refresher.refreshServer(sid),
    showBanner,
  });
  store.subscribe(() => calls.showing(store.state.activeServer ? store.state.activeChannel : null), SELECTION_KEYS);
  const pane = createChannelPane({
    client,
    sync,
    store,
    userId,
    shell: view,
    header,
    dms,
    welcome: () =>
      renderWelcome({
        config,
        client,
        api,
        store,
        userId,
        onCreate: () => openCreate(),
        onJoined: (sid) => {
          address.request(sid);
          return refresher.refreshServers();
        },
      }),
  });
  const memberList = createMemberList({ client, store, presence, showProfile: (anchor, person) => dms.showProfile(anchor, person) });
  const address = createAddress({
    store,
    shell: view,
    selectServer,
    follow: (roomId, target) => {
      if (pane.chat?.roomId === roomId) pane.chat.follow(target);
    },
  });
  const refresher = createServerRefresh({ api, sync, store, address, showBanner, onSignedOut });

  // A thread opened or closed by the person is a move, as a channel is (views/threads-view.js).
  pane.el.addEventListener("threadchange", (event) => store.followThread(/** @type {CustomEvent} */ (event).detail));

  const content = h("main", { class: "content" }, header.el, connection, banner, address.notice, calls.panel, pane.el);
  const scrim = h("div", { class: "scrim", "data-testid": "scrim", onclick: () => drawers.set(null) });
  view.append(rail.el, sidebar.el, content, memberList.el, scrim);

  // --- moving around -------------------------------------------------------------------------
  /**
   * Open a server (null: Home); `eventId`, a message a link named in the channel it opens;
   * `threadId`, a thread it named there.
   */
  function selectServer(sid, eventId = null, threadId = null) {
    dms.close();
    // On a phone the menu stays open on the server just picked, to choose one of its channels.
    drawers.keepNav();
    store.selectServer(sid, eventId, threadId);
    sid = store.state.activeServer;
    if (sid && !store.state.members.has(sid)) refresher.loadMembers(sid);
  }

  /** The person picked Home (null) or a server in the rail: that stands, even during start-up. */
  function chooseServer(sid) {
    address.chosen();
    selectServer(sid);
  }

  function selectChannel(cid) {
    drawers.set(null);
    store.selectChannel(cid);
  }

  /** What the management dialogs (manage/) are given to act on the shell. */
  function manageContext() {
    return {
      session,
      api,
      matrix: client,
      refresh: (sid) => (sid ? refresher.refreshServer(sid) : refresher.refreshServers()),
      selectServer: async (sid) => {
        // A server just joined may not be listed by the bridge yet: it opens once it is.
        address.request(sid);
        await refresher.refreshServers();
      },
      onServerGone: (sid) => {
        store.removeServer(sid);
        refresher.refreshServers();
      },
      openChannel: (sid, cid) => {
        store.rememberChannel(sid, cid);
        const listed = store.state.servers.get(sid)?.channels?.some((c) => c.channel_id === cid);
        if (listed) selectServer(sid);
      },
    };
  }

  async function openCreate() {
    const manage = await loadManage();
    if (manage?.openCreateServer) manage.openCreateServer(manageContext());
    else selectServer(null);
  }

  // --- the sync ------------------------------------------------------------------------------
  function onSyncUpdate(event) {
    const { rooms, state } = event.detail;
    refresher.onSync(event.detail);
    for (const [sid, server] of store.state.servers) if (notify.isServerMuted(sid)) notify.catchUp(server);
    header.render();
    rail.render();
    if (store.state.activeServer || dms.touches(event.detail)) sidebar.render();
    const chat = pane.chat;
    if (!store.state.activeServer && dms.active && chat?.key !== dms.key()) pane.render();
    else if (chat && (rooms.has(chat.roomId) || state.has(chat.roomId))) chat.render();
    else if (store.state.activeChannel && !chat && sync.room(store.state.activeChannel)) pane.render();
  }

  function onStatus(event) {
    const status = event.detail;
    connection.hidden = status !== "reconnecting";
    connection.textContent = status === "reconnecting" ? "Connection lost — reconnecting…" : "";
    view.dataset.sync = status;
  }

  // --- account -------------------------------------------------------------------------------
  async function onSignOut() {
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
      store.update({ me: { name: await name, avatar: await picture } });
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
    refresher.refreshServers();
  }

  view.addEventListener("read", () => {
    rail.render();
    sidebar.render();
  });
  window.addEventListener("focus", () => rail.render());

  // What a kicked or banned member is told (views/removal.js).
  view.append(mountRemovalNotices({ sync, userId }).el);

  // 1:1 calls in direct conversations (views/direct-call.js): ringing and the call panel.
  const directCalls = mountDirectCalls({ client, sync, userId });
  view.append(directCalls.el);

  store.changed(SELECTION_KEYS); // Home, until the servers are loaded
  boot();
  // The quick switcher (views/switcher.js): Ctrl+K or ⌘+K.
  const switcher = installSwitcher({
    root: view,
    items: () =>
      shellItems({
        client,
        userId,
        servers: store.state.servers,
        order: store.state.order,
        members: store.state.members,
        dms,
        activeServer: store.state.activeServer,
        jumpToChannel: (sid, cid) => {
          store.rememberChannel(sid, cid);
          selectServer(sid);
        },
        selectServer,
      }),
    // People are searched in every server's member list: load those not loaded yet.
    onOpen: () => {
      for (const sid of store.state.order) if (!store.state.members.has(sid)) refresher.loadMembers(sid).then(() => switcher.refresh());
    },
  });
  // For the tests and for debugging in the console: the live state, read-only by convention.
  view.guilds = { sync, servers: store.state.servers, calls, store };
  return view;
}
