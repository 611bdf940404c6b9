// Direct conversations in the shell, as in Discord: the DM list of the Home view, DM avatars with
// unread badges in the rail (views/dm-list.js), the DM chat (the channels' chat view, with its
// own header: views/dm-pane.js), pending DM invitations with Accept / Decline
// (views/dm-invite.js), and the profile card that opens a DM from a name
// (views/profile-card.js). Names, avatars and the list's order are views/dm-entries.js. This
// module holds which DM is open and wires them. A DM has the channels' search and pins
// (views/channel-tools.js), scoped to its room; both people may pin in one Guilds made
// (trusted_private_chat gives them the same power).
//
// Incoming DM invitations are shown, never joined on their own: anyone on the homeserver can
// invite anyone, and a person decides whom they talk to.

import { DirectMessages } from "../dms.js";
import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { byActivity, createProfiles, dmAvatar, dmName, lastActive } from "./dm-entries.js";
import { inviteButtons } from "./dm-invite.js";
import { renderDmList, renderDmRail } from "./dm-list.js";
import { createDmPanes } from "./dm-pane.js";
import { showProfileCard } from "./profile-card.js";

export { registerDmHeaderAction } from "./dm-pane.js";

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
  const profiles = createProfiles(client, onChange);
  /** The DM shown: {userId, roomId (null while it is being found or created), error}. */
  let active = null;

  const railEl = h("div", { class: "rail-dms", "data-testid": "rail-dms" });
  const panes = createDmPanes({ client, sync, userId, toggleNav, nameOf, avatarUrlOf, showProfile });

  // --- names and avatars ---------------------------------------------------------------------
  function nameOf(uid, room = null, inviteState = null) {
    return dmName(uid, { room, inviteState, profile: () => profiles.get(uid) });
  }

  function avatarUrlOf(uid, room = null) {
    return dmAvatar(uid, { room, profile: () => profiles.get(uid) });
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
      .sort(byActivity);
  }

  function isShown(roomId) {
    return active?.roomId === roomId && document.hasFocus();
  }

  // --- the rail and the Home sidebar ---------------------------------------------------------
  function renderRail() {
    const items = entries().filter((d) => (d.invite || d.unread > 0) && !isShown(d.roomId));
    renderDmRail(railEl, { client, items, onOpen: openRoom });
  }

  function renderList() {
    return renderDmList({
      client,
      list: entries(),
      selectedRoomId: active?.roomId ?? null,
      onOpen: openRoom,
      inviteActions: (d) => invitation(d.roomId, d.userId, "small"),
    });
  }

  /** Accept / Decline of the invitation to `roomId` from `partner`. */
  function invitation(roomId, partner, size = "") {
    return inviteButtons({
      size,
      accept: async () => {
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
      },
      decline: async () => {
        await model.decline(roomId);
        if (active?.roomId === roomId) active = null;
        onShow();
      },
    });
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
    if (k.startsWith("chat:")) return panes.chat(active.roomId, active.userId ?? model.partnerOf(active.roomId));
    const { roomId, userId: partner } = active;
    return panes.notice(k, active, () => invitation(roomId, partner));
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
    showProfileCard(anchor, {
      client,
      userId: uid,
      name: name || nameOf(uid),
      avatar: mxc ?? avatarUrlOf(uid),
      self: uid === userId,
      onMessage: () => open(uid),
    });
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
