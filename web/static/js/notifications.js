// Mute and desktop notifications, both as the homeserver's push rules decide them.
//
// - Muting a channel is the user's push rule that Element writes for "Mute": an `override` rule
//   whose id is the room id, matching the room, with no actions. It outranks every default rule,
//   mentions included, so the homeserver counts nothing there (no unread, no mention badge) and
//   Element, Cinny and phones (push gateways read the same rules) stay quiet too.
// - Muting a server mutes each of its channels (and its space) that way; the server's entry in the
//   account data `chat.guilds.muted_servers` lists the rooms it covered, so a channel created
//   later is muted when it appears, and a channel unmuted on its own is not muted again.
// - A desktop notification is raised for a new message that mentions the user when the
//   homeserver's highlight count for its room says so (a muted room has none), the tab is hidden
//   or unfocused, and the person allowed notifications.

import { h } from "./dom.js";
import { icon } from "./icons.js";
import { plainPreview } from "./markdown.js";
import { mayMentionRoom, mentionsUser } from "./mentions.js";

export const MUTED_SERVERS = "chat.guilds.muted_servers";
const PUSH_RULES = "m.push_rules";
const BODY_PREVIEW = 200;

/** Whether the user's push rules mute a room (an override rule of its id that never notifies). */
export function isMutedBy(pushRules, roomId) {
  const rule = (pushRules?.global?.override ?? []).find((r) => r?.rule_id === roomId);
  if (!rule || rule.enabled === false) return false;
  return !(rule.actions ?? []).some((a) => a === "notify" || a?.set_tweak === "highlight");
}

/** The push rule that mutes a room: what Element's "Mute" writes. */
export function muteRule(roomId) {
  return { conditions: [{ kind: "event_match", key: "room_id", pattern: roomId }], actions: [] };
}

/**
 * The rooms of a muted server still to mute: its rooms that the muting has not covered yet.
 * @param {{servers?: Record<string, string[]>} | undefined} marker  the account data
 * @param {string} serverId
 * @param {string[]} roomIds  the server's space and channels now
 */
export function roomsToMute(marker, serverId, roomIds) {
  const covered = marker?.servers?.[serverId];
  if (!Array.isArray(covered)) return [];
  return roomIds.filter((id) => !covered.includes(id));
}

/**
 * @param {object} options
 * @param {import("./matrix.js").MatrixClient} options.client
 * @param {import("./sync.js").SyncEngine} options.sync
 * @param {string} options.userId
 * @param {(roomId: string) => string} options.placeOf  "in #channel (Server)" for a notification
 *   from a server's channel, "" for a DM
 * @param {(roomId: string) => void} options.open  show a room (a notification clicked)
 */
export function createNotifications({ client, sync, userId, placeOf, open }) {
  let ready = false; // the first sync's backlog raises nothing
  sync.firstSync.then(() => {
    ready = true;
  });
  const pending = new Set(); // servers whose catch-up is running

  function pushRules() {
    return sync.accountData.get(PUSH_RULES);
  }

  function marker() {
    return sync.accountData.get(MUTED_SERVERS) ?? { servers: {} };
  }

  async function setMuted(roomId, muted) {
    if (muted) await client.setPushRule("override", roomId, muteRule(roomId));
    else await client.deletePushRule("override", roomId);
  }

  function roomsOf(server) {
    return [server.server_id, ...(server.channels ?? []).map((c) => c.channel_id)];
  }

  async function setServerMuted(server, muted) {
    const rooms = roomsOf(server);
    for (const roomId of rooms) await setMuted(roomId, muted);
    const servers = { ...marker().servers };
    if (muted) servers[server.server_id] = rooms;
    else delete servers[server.server_id];
    await client.setAccountData(userId, MUTED_SERVERS, { servers });
  }

  /** Mute the channels that appeared in a muted server since it was muted. */
  async function catchUp(server) {
    const missing = roomsToMute(marker(), server.server_id, roomsOf(server));
    if (missing.length === 0 || pending.has(server.server_id)) return;
    pending.add(server.server_id);
    try {
      for (const roomId of missing) await setMuted(roomId, true);
      const servers = { ...marker().servers };
      servers[server.server_id] = [...new Set([...(servers[server.server_id] ?? []), ...missing])];
      await client.setAccountData(userId, MUTED_SERVERS, { servers });
    } catch (error) {
      console.warn("could not mute a new channel of a muted server", error);
    } finally {
      pending.delete(server.server_id);
    }
  }

  function notify(roomId, event) {
    const room = sync.room(roomId);
    if (!room) return;
    const content = room.latestEdit(event)?.content?.["m.new_content"] ?? event.content ?? {};
    const body = plainPreview(content).slice(0, BODY_PREVIEW);
    const place = placeOf(roomId);
    const notification = new Notification(`${room.displayName(event.sender)}${place ? ` ${place}` : ""}`, {
      body,
      tag: event.event_id,
    });
    notification.addEventListener("click", () => {
      window.focus();
      open(roomId);
      notification.close();
    });
  }

  sync.addEventListener("timeline", (e) => {
    if (!ready || typeof Notification === "undefined" || Notification.permission !== "granted") return;
    if (!document.hidden && document.hasFocus()) return;
    for (const [roomId, events] of /** @type {CustomEvent} */ (e).detail) {
      const room = sync.room(roomId);
      // The homeserver's push rules decide: a mute, or any other rule, leaves no highlight.
      if (!room || room.unread.highlights === 0 || isMutedBy(pushRules(), roomId)) continue;
      const me = { userId, displayName: room.displayName(userId) };
      const mention = [...events]
        .reverse()
        .find(
          (event) =>
            event.type === "m.room.message" &&
            !event.content?.["m.relates_to"]?.rel_type &&
            mentionsUser(event, { ...me, senderMayMentionRoom: mayMentionRoom(room, event.sender) }),
        );
      if (mention) notify(roomId, mention);
    }
  });

  /** A bell in the user panel while the browser has not been asked; gone once answered. */
  const permissionButton = h(
    "button",
    {
      type: "button",
      class: "icon-button",
      "data-testid": "enable-notifications",
      title: "Enable desktop notifications for mentions",
      "aria-label": "Enable desktop notifications for mentions",
      onclick: async () => {
        await Notification.requestPermission();
        showPermission();
      },
    },
    icon("bell"),
  );
  function showPermission() {
    permissionButton.hidden = typeof Notification === "undefined" || Notification.permission !== "default";
  }
  showPermission();

  return {
    permissionButton,
    isMuted: (roomId) => isMutedBy(pushRules(), roomId),
    isServerMuted: (serverId) => Array.isArray(marker().servers?.[serverId]),
    setMuted,
    setServerMuted,
    catchUp,
  };
}
