// Mute controls: the bell in a channel's header and "Mute server" in the server menu. Both write
// the user's push rules (notifications.js), so the homeserver, other clients and phones honour them.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { setIcon } from "../icons.js";

/**
 * The header's bell for the open channel (hidden when none is open).
 * @param {ReturnType<typeof import("../notifications.js").createNotifications>} notify
 * @param {() => string | null} currentRoom
 */
export function muteButton(notify, currentRoom) {
  let busy = false;
  const el = h("button", {
    type: "button",
    class: "icon-button channel-mute",
    "data-testid": "channel-mute",
    onclick: async () => {
      const roomId = currentRoom();
      if (!roomId || busy) return;
      busy = true;
      el.disabled = true;
      try {
        await notify.setMuted(roomId, !notify.isMuted(roomId));
      } catch (error) {
        console.warn("mute failed", error);
        el.title = `Could not change: ${describeError(error)}`;
      } finally {
        busy = false;
        el.disabled = false;
      }
      // The sync brings the rule back; drawn again then.
    },
  });
  function render() {
    const roomId = currentRoom();
    el.hidden = !roomId;
    if (!roomId) return;
    const muted = notify.isMuted(roomId);
    setIcon(el, muted ? "bell-off" : "bell");
    const label = muted ? "Unmute channel" : "Mute channel";
    el.title = label;
    el.setAttribute("aria-label", label);
    el.setAttribute("aria-pressed", String(muted));
  }
  render();
  return { el, render };
}

/**
 * The server menu's entry that mutes or unmutes every channel of the server.
 * @param {ReturnType<typeof import("../notifications.js").createNotifications>} notify
 * @param {{server_id: string, channels?: any[]}} server
 * @param {(message: string) => void} onError
 * @returns {[string, () => void, {testid: string}]}
 */
export function muteMenuEntry(notify, server, onError) {
  const muted = notify.isServerMuted(server.server_id);
  return [
    muted ? "Unmute server" : "Mute server",
    () => {
      notify.setServerMuted(server, !muted).catch((error) => onError(`Could not change the server's notifications: ${describeError(error)}`));
    },
    { testid: muted ? "menu-unmute-server" : "menu-mute-server" },
  ];
}
