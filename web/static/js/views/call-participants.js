// Who is in each voice and video channel's call, under its entry in the sidebar: read live from
// the rooms' call memberships (calls/group.js), so the page follows (joins as a member, not into
// the call) every call channel of the servers it shows, and looks again now and then, since a
// membership expires without an event.

import { h } from "../dom.js";
import { callMembers } from "../calls/group.js";
import { avatar } from "../avatar.js";
import { CALL_KINDS, FOREIGN_LABEL, callPeople } from "./call-status.js";

// Memberships expire without an event: the sidebar is looked at again this often.
const EXPIRY_RECHECK_MS = 5_000;

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {{userId: string, deviceId: string}} options.session
 * @param {() => import("../calls/group.js").GroupCall | null} options.getCall  ours, if any
 * @param {(userId: string) => boolean} options.isSpeaking  in our call, now
 * @param {() => void} options.onChange  the sidebar should be drawn again
 */
export function createCallParticipants({ client, sync, session, getCall, isSpeaking, onChange }) {
  const joinedRooms = new Set();

  /** Join (as room members, not into the call) the voice and video channels of a server, so
   *  their call membership state reaches this client and the sidebar can list who is in. */
  function watchServer(server) {
    for (const channel of server?.channels ?? []) {
      if (!CALL_KINDS.has(channel.kind) || sync.room(channel.channel_id) || joinedRooms.has(channel.channel_id)) continue;
      joinedRooms.add(channel.channel_id);
      client.joinRoom(channel.channel_id).catch((error) => {
        console.warn(`could not follow the call in ${channel.name}`, error);
      });
    }
  }

  /** The people in a voice or video channel's call, for under its sidebar entry (or null). */
  function participants(channel) {
    if (!CALL_KINDS.has(channel.kind)) return null;
    const call = getCall();
    const room = sync.room(channel.channel_id);
    let members = callMembers(room);
    if (call && call.roomId === channel.channel_id && call.state === "joined") {
      // In this call we know better than a late refresh: we and our connected peers are here.
      const here = (m) =>
        (m.userId === session.userId && m.deviceId === session.deviceId) ||
        call.peers.get(`${m.userId}|${m.deviceId}`)?.connected;
      const live = new Set(members.map((m) => m.key));
      members = callMembers(room, Date.now(), { includeExpired: true }).filter((m) => live.has(m.key) || here(m));
    }
    if (members.length === 0) return null;
    const inOurCall = call?.roomId === channel.channel_id;
    const items = callPeople(members).map(({ userId, foreign }) => {
      const name = room.displayName(userId);
      return h(
        "li",
        {
          class: `call-participant${isSpeaking(userId) && inOurCall ? " speaking" : ""}`,
          "data-testid": "call-participant",
          "data-user-id": userId,
          "data-foreign": foreign ? "true" : "false",
          title: foreign ? `${userId} · ${FOREIGN_LABEL}` : userId,
        },
        avatar(client, { mxc: room.avatarOf(userId), name, id: userId, size: 22, className: "call-participant-avatar avatar" }),
        h("span", { class: "call-participant-name", text: name }),
        foreign ? h("span", { class: "call-participant-app muted", "data-testid": "call-participant-app", text: "other app" }) : null,
      );
    });
    return h("ul", { class: "call-participants", "data-testid": "call-participants", "data-channel-id": channel.channel_id }, ...items);
  }

  /** The speaking ring on a person listed in the sidebar. */
  function markSpeaking(userId, on) {
    for (const el of document.querySelectorAll('[data-testid="call-participant"]')) {
      if (el.getAttribute("data-user-id") === userId) el.classList.toggle("speaking", on);
    }
  }

  // Who is in which call, as last drawn: an expiry (which comes with no event) redraws the sidebar.
  let lastSignature = "";
  function signature() {
    const parts = [];
    for (const room of sync.rooms.values()) {
      const members = callMembers(room);
      if (members.length) parts.push(`${room.roomId}:${members.map((m) => m.key).join(",")}`);
    }
    return parts.join(";");
  }
  const recheck = setInterval(() => {
    const now = signature();
    if (now !== lastSignature) {
      lastSignature = now;
      onChange();
    }
  }, EXPIRY_RECHECK_MS);

  return {
    watchServer,
    participants,
    markSpeaking,
    destroy() {
      clearInterval(recheck);
    },
  };
}
