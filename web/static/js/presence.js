// Presence dots (online, idle, offline) on the member list, from the sync's `m.presence` events.
//
// A homeserver may have presence turned off (Synapse `presence.enabled: false`): it then sends no
// presence events, and answers every status request with a bare `{"presence": "offline"}`, even
// for the user who is syncing as online this moment. That answer, asked once after the first
// sync, is how the client learns the setting: with presence off, no dot is drawn at all rather
// than everyone shown offline. (Synapse's "untracked" mode, where syncing sets no presence, reads
// the same and is treated the same: its dots would not follow who is there.)

import { h } from "./dom.js";

const LABELS = { online: "Online", unavailable: "Idle", offline: "Offline" };

/**
 * Whether the homeserver keeps presence, from its answer about the user's own status asked
 * while they sync as online.
 * @param {{presence?: string} | null} own
 */
export function presenceEnabled(own) {
  return Boolean(own && typeof own.presence === "string" && own.presence !== "offline");
}

/** The dot's state for an `m.presence` content (unknown and odd values read as offline). */
export function presenceState(content) {
  const value = content?.presence;
  return value === "online" || value === "unavailable" ? value : "offline";
}

/**
 * @param {{client: import("./matrix.js").MatrixClient, sync: import("./sync.js").SyncEngine,
 *   userId: string, onChange: () => void}} options
 */
export function createPresence({ client, sync, userId, onChange }) {
  /** null until known; then whether the homeserver keeps presence */
  let enabled = null;

  sync.firstSync.then(async () => {
    try {
      enabled = presenceEnabled(await client.getPresence(userId));
    } catch (error) {
      console.warn("presence setting unknown", error);
      enabled = false;
    }
    onChange();
  });
  sync.addEventListener("presence", () => {
    if (enabled) onChange();
  });

  return {
    get enabled() {
      return enabled;
    },
    /** The state of a user ("online" | "unavailable" | "offline"), or null with presence off. */
    stateOf(uid) {
      if (!enabled) return null;
      return presenceState(sync.presence.get(uid));
    },
    /** `avatarEl` with the user's dot at its corner, or `avatarEl` alone with presence off. */
    withDot(avatarEl, uid) {
      const state = this.stateOf(uid);
      if (!state) return avatarEl;
      return h(
        "span",
        { class: "presence-wrap" },
        avatarEl,
        h("span", {
          class: `presence-dot ${state}`,
          "data-testid": "presence-dot",
          "data-presence": state,
          role: "img",
          "aria-label": LABELS[state],
          title: LABELS[state],
        }),
      );
    },
  };
}
