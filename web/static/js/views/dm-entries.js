// Who each direct conversation is with, and the order of the DM list: a partner's name and avatar
// (from the room's member event, else the invitation's stripped state, else their profile, asked
// once and kept, else their localpart) and the list's order (invitations first, then the most
// recently active). Pure but the profiles' cache (tests/unit_js/dm-entries.test.mjs).

/**
 * @typedef {{displayname?: string, avatar_url?: string}} Profile
 * @typedef {{member(userId: string): any, avatarOf(userId: string): string | null}} MemberRoom
 */

/**
 * A partner's name. The profile is asked for only when the room and the invitation name nobody.
 * @param {string} userId
 * @param {object} sources
 * @param {MemberRoom | null} [sources.room]
 * @param {any[] | null} [sources.inviteState]  an invitation's stripped state events
 * @param {() => Profile} sources.profile
 */
export function dmName(userId, { room = null, inviteState = null, profile }) {
  const fromRoom = room?.member(userId)?.content?.displayname;
  if (typeof fromRoom === "string" && fromRoom) return fromRoom;
  const stripped = (inviteState ?? []).find((e) => e?.type === "m.room.member" && e.state_key === userId);
  if (typeof stripped?.content?.displayname === "string" && stripped.content.displayname) return stripped.content.displayname;
  const known = profile();
  if (typeof known.displayname === "string" && known.displayname) return known.displayname;
  return userId.replace(/^@/, "").split(":")[0];
}

/**
 * A partner's avatar (`mxc://`), or null. The profile is asked for only when the room has none.
 * @param {string} userId
 * @param {{room?: MemberRoom | null, profile: () => Profile}} sources
 */
export function dmAvatar(userId, { room = null, profile }) {
  const fromRoom = room?.avatarOf(userId);
  if (fromRoom) return fromRoom;
  const url = profile().avatar_url;
  return typeof url === "string" && url.startsWith("mxc://") ? url : null;
}

/**
 * When a room was last active: its newest event's timestamp (0 when none has one).
 * @param {{timeline: {origin_server_ts?: number}[]}} room
 */
export function lastActive(room) {
  for (let i = room.timeline.length - 1; i >= 0; i--) {
    const ts = room.timeline[i].origin_server_ts;
    if (Number.isFinite(ts)) return ts;
  }
  return 0;
}

/**
 * The DM list's order: the most recently active first (invitations are `Infinity`), then by name.
 * @param {{lastActive: number, name: string}} a
 * @param {{lastActive: number, name: string}} b
 */
export function byActivity(a, b) {
  return b.lastActive - a.lastActive || a.name.localeCompare(b.name);
}

/**
 * People's profiles, each asked for once: `get` answers what is known now (`{}` until it
 * arrives) and `onChange` is called when an answer arrives, so the names are drawn again.
 * @param {{getProfile(userId: string): Promise<any>}} client
 * @param {() => void} onChange
 */
export function createProfiles(client, onChange) {
  const profiles = new Map(); // user id → Profile | "loading"
  /** @returns {Profile} */
  function get(userId) {
    const known = profiles.get(userId);
    if (known && known !== "loading") return known;
    if (!known) {
      profiles.set(userId, "loading");
      client
        .getProfile(userId)
        .then((p) => profiles.set(userId, p && typeof p === "object" ? p : {}))
        .catch(() => profiles.set(userId, {}))
        .finally(() => onChange());
    }
    return {};
  }
  return { get };
}
