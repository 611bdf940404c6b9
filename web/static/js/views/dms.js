// Direct conversations in the shell, as in Discord: the DM list of the Home view, DM avatars with
// unread badges in the rail, the DM chat (the channels' chat view, with its own header), pending
// DM invitations with Accept / Decline, and the profile card that opens a DM from a name.
//
// Incoming DM invitations are shown, never joined on their own: anyone on the homeserver can
// invite anyone, and a person decides whom they talk to.

import { DirectMessages } from "../dms.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { avatar } from "../avatar.js";
import { createChatView } from "./chat.js";
import { closePopover, showPopover } from "./popups.js";

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
 * @param {string} options.userId
 * @param {() => void} options.onShow  switch the shell to the Home view, where the active DM shows
 * @param {() => void} options.onChange  names or avatars arrived: render the rail and list again
 * @param {() => void} options.toggleNav  the phone-sized menu button of the DM header
 */
export function createDmView({ client, sync, userId, onShow, onChange, toggleNav }) {
  const model = new DirectMessages(client, sync, userId);
  const profiles = new Map(); // user id → {displayname, avatar_url} | "loading"
  /** The DM shown: {userId, roomId (null while it is being found or created), error}. */
  let active = null;

  const railEl = h("div", { class: "rail-dms", "data-testid": "rail-dms" });

  // --- names and avatars ---------------------------------------------------------------------
  function profileOf(uid) {
    const known = profiles.get(uid);
    if (known && known !== "loading") return known;
    if (!known) {
      profiles.set(uid, "loading");
      client
        .getProfile(uid)
        .then((p) => profiles.set(uid, p && typeof p === "object" ? p : {}))
        .catch(() => profiles.set(uid, {}))
        .finally(() => onChange());
    }
    return {};
  }

  function nameOf(uid, room = null, inviteState = null) {
    const fromRoom = room?.member(uid)?.content?.displayname;
    if (typeof fromRoom === "string" && fromRoom) return fromRoom;
    const stripped = (inviteState ?? []).find((e) => e?.type === "m.room.member" && e.state_key === uid);
    if (typeof stripped?.content?.displayname === "string" && stripped.content.displayname) return stripped.content.displayname;
    const profile = profileOf(uid);
    if (typeof profile.displayname === "string" && profile.displayname) return profile.displayname;
    return uid.replace(/^@/, "").split(":")[0];
  }

  function avatarUrlOf(uid, room = null) {
    const fromRoom = room?.avatarOf(uid);
    if (fromRoom) return fromRoom;
    const url = profileOf(uid).avatar_url;
    return typeof url === "string" && url.startsWith("mxc://") ? url : null;
  }

  /** The DMs, invitations first, then the most recently active. */
  function entries() {
    return model
      .list()
      .map((d) => ({
        ...d,
        name: nameOf(d.userId, d.room, d.state),
        avatar: avatarUrlOf(d.userId, d.room),
        unread: d.invite ? 0 : d.room.unread.notifications,
        lastActive: d.invite ? Infinity : lastActive(d.room),
      }))
      .sort((a, b) => b.lastActive - a.lastActive || a.name.localeCompare(b.name));
  }

  function isShown(roomId) {
    return active?.roomId === roomId && document.hasFocus();
  }

  // --- the rail: DMs with something new -----------------------------------------------------
  function renderRail() {
    const items = entries().filter((d) => (d.invite || d.unread > 0) && !isShown(d.roomId));
    railEl.replaceChildren(
      ...items.map((d) =>
        h(
          "button",
          {
            type: "button",
            class: "rail-item dm unread",
            "data-testid": "rail-dm",
            "data-room-id": d.roomId,
            "data-user-id": d.userId,
            title: d.name,
            "aria-label": d.invite ? `${d.name}: invitation` : `${d.name}: ${d.unread} unread`,
            onclick: () => openRoom(d.roomId, d.userId),
          },
          avatar(client, { mxc: d.avatar, name: d.name, id: d.userId, size: 48, className: "rail-icon" }),
          h("span", { class: "rail-tooltip", role: "tooltip", text: d.name }),
          h("span", { class: "badge", "data-testid": "rail-dm-badge", text: d.invite ? "!" : String(d.unread) }),
        ),
      ),
    );
    railEl.hidden = items.length === 0;
  }

  // --- the Home sidebar: the DM list ---------------------------------------------------------
  function renderList() {
    const list = entries();
    const ul = h("ul", { class: "dm-items" });
    for (const d of list) {
      const selected = active?.roomId === d.roomId;
      const item = h(
        "li",
        { class: "dm-entry" },
        h(
          "button",
          {
            type: "button",
            class: `channel dm-item${selected ? " selected" : ""}${d.unread && !selected ? " unread" : ""}${d.invite ? " invite" : ""}`,
            "data-testid": "dm-item",
            "data-room-id": d.roomId,
            "data-user-id": d.userId,
            "aria-current": selected ? "page" : false,
            title: d.userId,
            onclick: () => openRoom(d.roomId, d.userId),
          },
          avatar(client, { mxc: d.avatar, name: d.name, id: d.userId, size: 32 }),
          h(
            "span",
            { class: "dm-item-text" },
            h("span", { class: "channel-name", "data-testid": "dm-name", text: d.name }),
            d.invite ? h("span", { class: "dm-item-sub muted", text: "Wants to talk with you" }) : null,
          ),
          d.unread && !selected ? h("span", { class: "badge", "data-testid": "dm-badge", text: String(d.unread) }) : null,
        ),
      );
      if (d.invite) item.append(inviteButtons(d.roomId, d.userId, "small"));
      ul.append(item);
    }
    return h(
      "section",
      { class: "dm-list", "data-testid": "dm-list", "aria-label": "Direct messages" },
      h("h3", { class: "category-name", text: "Direct messages" }),
      list.length
        ? ul
        : h("p", { class: "sidebar-empty muted", "data-testid": "dm-empty", text: "No conversations yet. Click someone's name to message them." }),
    );
  }

  function inviteButtons(roomId, partner, size = "") {
    const error = h("p", { class: "form-error", role: "alert", "data-testid": "dm-invite-error" });
    error.hidden = true;
    const accept = h("button", {
      type: "button",
      class: `button primary ${size}`,
      "data-testid": "dm-accept",
      text: "Accept",
      onclick: () => run(async () => {
        active = { userId: partner, roomId, error: null };
        onShow();
        try {
          await model.accept(roomId, partner);
        } catch (err) {
          // The list was drawn again when the DM opened: tell it in the content instead.
          if (active?.roomId === roomId) {
            active = { userId: partner, roomId, error: describeError(err) };
            onShow();
          }
          throw err;
        }
      }),
    });
    const decline = h("button", {
      type: "button",
      class: `button ${size}`,
      "data-testid": "dm-decline",
      text: "Decline",
      onclick: () => run(async () => {
        await model.decline(roomId);
        if (active?.roomId === roomId) active = null;
        onShow();
      }),
    });
    async function run(action) {
      accept.disabled = decline.disabled = true;
      error.hidden = true;
      try {
        await action();
      } catch (err) {
        error.textContent = describeError(err);
        error.hidden = false;
        accept.disabled = decline.disabled = false;
      }
    }
    return h("div", { class: `dm-invite-actions ${size}` }, accept, decline, error);
  }

  // --- the content: the active DM ------------------------------------------------------------
  /** What the content shows for the active DM: changes when it must be built anew. */
  function key() {
    if (!active) return null;
    if (active.error) return `error:${active.userId}`;
    if (!active.roomId) return `opening:${active.userId}`;
    if (sync.room(active.roomId)) return `chat:${active.roomId}`;
    if (sync.invites.has(active.roomId)) return `invite:${active.roomId}`;
    return `opening:${active.roomId}`;
  }

  /** The pane to show for the active DM: `current` when still right, a new one otherwise, null when none. */
  function content(current) {
    const k = key();
    if (!k) return null;
    if (current?.key === k) return current;
    const [kind] = k.split(":");
    if (kind === "chat") return chatPane(active.roomId, active.userId ?? model.partnerOf(active.roomId));
    const name = nameOf(active.userId);
    let inner;
    if (kind === "error") {
      inner = h("p", { class: "form-error", role: "alert", "data-testid": "dm-error", text: `Could not open the conversation with ${name}: ${active.error}` });
    } else if (kind === "invite") {
      inner = h(
        "div",
        { class: "card dm-invite-card", "data-testid": "dm-invite" },
        avatar(client, { mxc: avatarUrlOf(active.userId), name, id: active.userId, size: 80, className: "avatar large" }),
        h("h2", { class: "welcome-name", text: name }),
        h("p", { class: "muted", text: `${active.userId} wants to start a conversation with you.` }),
        inviteButtons(active.roomId, active.userId),
      );
    } else {
      inner = h("p", { class: "muted", "data-testid": "dm-opening", text: `Opening the conversation with ${name}…` });
    }
    const el = h("section", { class: "dm-pane" }, header(active.roomId, active.userId, name), h("div", { class: "empty-state" }, inner));
    return { key: k, el, roomId: active.roomId, render() {}, focus() {}, destroy() {} };
  }

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

  function chatPane(roomId, partner) {
    const room = sync.room(roomId);
    const name = partner ? nameOf(partner, room) : room?.name || "Direct message";
    const encrypted = Boolean(room?.getState("m.room.encryption"));
    const chat = createChatView({
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
    });
    const top = header(roomId, partner, name, room);
    const title = top.querySelector("[data-testid=dm-title]");
    const el = h("section", { class: "dm-pane", "data-testid": "dm-chat", "data-room-id": roomId }, top, chat.el);
    return {
      key: `chat:${roomId}`,
      el,
      roomId,
      render() {
        if (partner) title.textContent = nameOf(partner, sync.room(roomId));
        chat.render();
      },
      focus: () => chat.focus(),
      destroy: () => chat.destroy(),
    };
  }

  // --- opening -------------------------------------------------------------------------------
  function openRoom(roomId, partner = null) {
    active = { roomId, userId: partner ?? model.partnerOf(roomId), error: null };
    onShow();
  }

  /** Open the DM with `partner`, finding or creating its room. */
  async function open(partner) {
    if (partner === userId) return;
    active = { userId: partner, roomId: null, error: null };
    onShow();
    try {
      const roomId = await model.open(partner);
      if (active?.userId === partner) {
        active = { userId: partner, roomId, error: null };
        onShow();
      }
    } catch (error) {
      if (active?.userId === partner) {
        active = { userId: partner, roomId: null, error: describeError(error) };
        onShow();
      }
    }
  }

  /** A person's card, next to their name or avatar, with "Message" to open the DM. */
  function showProfile(anchor, { userId: uid, name, avatar: mxc }) {
    const shown = name || nameOf(uid);
    const card = h(
      "div",
      { class: "profile-card", "data-user-id": uid },
      avatar(client, { mxc: mxc ?? avatarUrlOf(uid), name: shown, id: uid, size: 80, className: "avatar large" }),
      h("strong", { class: "profile-name", "data-testid": "profile-name", text: shown }),
      h("span", { class: "muted small profile-id", text: uid }),
      uid === userId
        ? h("span", { class: "muted small", text: "That's you." })
        : h("button", {
            type: "button",
            class: "button primary wide",
            "data-testid": "profile-message",
            text: `Message @${shown}`,
            onclick: () => {
              closePopover();
              open(uid);
            },
          }),
    );
    const pop = showPopover(anchor, card, { testid: "profile-card", align: "start" });
    pop.querySelector("button")?.focus();
  }

  /** Whether a sync update changes the DM list (rooms joined or left, m.direct, a DM's messages). */
  function touches({ rooms, membership, accountData }) {
    if (membership || accountData?.has("m.direct")) return true;
    return model.list().some((d) => rooms.has(d.roomId));
  }

  return {
    railEl,
    touches,
    model,
    get activeRoomId() {
      return active?.roomId ?? null;
    },
    get active() {
      return active !== null;
    },
    key,
    content,
    renderRail,
    renderList,
    entries,
    nameOf,
    avatarUrlOf,
    open,
    openRoom,
    showProfile,
    close() {
      active = null;
    },
  };
}

function lastActive(room) {
  for (let i = room.timeline.length - 1; i >= 0; i--) {
    const ts = room.timeline[i].origin_server_ts;
    if (Number.isFinite(ts)) return ts;
  }
  return 0;
}
