// The content under the header: the open channel's chat (joined first when it must be), a
// direct conversation on Home, the welcome on Home otherwise, or why nothing is shown.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { SELECTION_KEYS, hasPermission, memberName, roleColor } from "../store.js";
import { awaitAutoJoin } from "./channel-join.js";
import { createChatView } from "./chat.js";
import { pinTools } from "./pins.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {import("../store.js").ShellStore} options.store
 * @param {string} options.userId
 * @param {HTMLElement} options.shell  its classes say what is shown (no-server, dm-mode)
 * @param {ReturnType<typeof import("./content-header.js").createContentHeader>} options.header
 * @param {any} options.dms  the direct conversations (views/dms.js)
 * @param {() => Element} options.welcome  Home's welcome (views/welcome.js)
 */
export function createChannelPane({ client, sync, store, userId, shell, header, dms, welcome }) {
  /** @type {{key: string, el: Element} | null} the welcome on Home, while it is shown */
  let shownWelcome = null;
  const el = h("div", { class: "content-body" });
  /** The chat shown (a channel's, or a DM pane), or null. */
  let chat = null;
  const joining = new Set();

  function render() {
    const server = store.activeServer();
    const channel = server?.channels?.find((c) => c.channel_id === store.state.activeChannel) ?? null;
    shell.classList.remove("dm-mode");
    header.updateTools();
    const dmPane = server ? null : dms.content(chat);
    if (dmPane) {
      shell.classList.add("no-server", "dm-mode");
      if (dmPane !== chat) {
        replaceChat(dmPane);
        el.replaceChildren(dmPane.el);
      }
      dmPane.render();
      if (window.matchMedia("(min-width: 761px)").matches) dmPane.focus();
      return;
    }
    if (!server) {
      header.show(null);
      replaceChat(null);
      // Drawn again only when it would say something else: a refresh of the server list must
      // not take away what the person is typing in its invite box.
      const key = `${store.state.order.length > 0}|${store.state.me.name}`;
      if (!shownWelcome || shownWelcome.key !== key || !el.contains(shownWelcome.el)) {
        shownWelcome = { key, el: welcome() };
        el.replaceChildren(shownWelcome.el);
      }
      shell.classList.add("no-server");
      return;
    }
    shell.classList.remove("no-server");
    if (!channel) {
      header.show(null, server.name);
      replaceChat(null);
      el.replaceChildren(h("div", { class: "empty-state muted", text: "No channel you can see here yet." }));
      return;
    }
    header.show(channel);
    if (chat && chat.roomId === channel.channel_id) {
      chat.render();
      return;
    }
    if (!sync.room(channel.channel_id)) {
      replaceChat(null);
      el.replaceChildren(h("div", { class: "empty-state muted", "data-testid": "joining", text: `Joining #${channel.name}…` }));
      // Before the first sync the channel may be joined already (the servers often answer
      // first): join only if it is still missing then, not with a wasted /join on every boot.
      sync.firstSync.then(() => {
        if (store.state.activeChannel === channel.channel_id && !sync.room(channel.channel_id)) joinChannel(channel);
      });
      return;
    }
    const chatView = channelChat(channel);
    replaceChat(chatView);
    el.replaceChildren(chatView.el);
    chatView.follow({ threadId: store.state.linkedThread, eventId: store.state.linkedEvent }); // what the address names
    if (window.matchMedia("(min-width: 761px)").matches) chatView.focus();
  }

  /** A channel's chat, reading the open server's members, roles and permissions. */
  function channelChat(channel) {
    const roomId = channel.channel_id;
    const chatView = createChatView({
      client,
      sync,
      userId,
      roomId,
      channel,
      server: () => store.activeServer(),
      roleColor: (uid) => roleColor(store.state, store.state.activeServer, uid),
      people: () => {
        const server = store.activeServer();
        return server ? { members: store.state.members.get(server.server_id) ?? [], roles: server.roles ?? [] } : null;
      },
      messageTools: pinTools({ client, sync, roomId, mayPin: () => hasPermission(store.activeServer(), "manage_messages") }),
      onUserClick: (uid, anchor) => {
        const member = (store.state.members.get(store.state.activeServer) ?? []).find((m) => m.user_id === uid);
        const room = sync.room(roomId);
        dms.showProfile(anchor, { userId: uid, name: member ? memberName(member) : room?.displayName(uid), avatar: member?.avatar ?? room?.avatarOf(uid) });
      },
    });
    return Object.assign(chatView, { roomId });
  }

  function replaceChat(next) {
    chat?.destroy();
    chat = next;
    header.setChatTools(next?.tools);
  }

  async function joinChannel(channel) {
    if (joining.has(channel.channel_id)) return;
    joining.add(channel.channel_id);
    try {
      if (await awaitAutoJoin(sync, channel.channel_id, userId)) return;
      await client.joinRoom(channel.channel_id);
      // The room appears in the next sync; render runs again then.
    } catch (error) {
      if (store.state.activeChannel === channel.channel_id) {
        el.replaceChildren(
          h("div", { class: "empty-state" }, h("p", { class: "form-error", text: `Could not join #${channel.name}: ${describeError(error)}` })),
        );
      }
    } finally {
      joining.delete(channel.channel_id);
    }
  }

  // What is open changed: drawn again. The open server's members loaded: the chat's names and
  // colours drawn again.
  store.subscribe((changed) => {
    if (SELECTION_KEYS.some((key) => changed.has(key))) render();
    else chat?.render();
  }, [...SELECTION_KEYS, "members"]);

  return {
    el,
    render,
    /** The chat shown (a channel's or a DM's), or null. */
    get chat() {
      return chat;
    },
  };
}
