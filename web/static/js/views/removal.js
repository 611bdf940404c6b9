// "You were removed from Friends: spam": what a kicked or banned member sees, at once, when the
// homeserver takes them out of a server's space (the reason is read from their membership event).

import { h } from "../dom.js";
import { removalNotice } from "../member-notices.js";

// The state event that marks a space as a Guilds server (guilds/vocabulary.py SERVER_EVENT).
const SERVER_EVENT = "chat.guilds.server";

/**
 * Listen to the sync engine's `left` events and show one dismissible notice per removal.
 * @param {{sync: EventTarget, userId: string}} options
 * @returns {{el: HTMLElement}}
 */
export function mountRemovalNotices({ sync, userId }) {
  const el = h("div", { class: "removal-notices", "data-testid": "removal-notices" });

  function show(text) {
    const notice = h(
      "div",
      { class: "removal-notice", role: "alert", "data-testid": "removal-notice" },
      h("span", { class: "removal-notice-text", "data-testid": "removal-notice-text", text }),
      h("button", {
        type: "button",
        class: "button small",
        "data-testid": "removal-notice-dismiss",
        text: "OK",
        onclick: () => notice.remove(),
      }),
    );
    el.append(notice);
  }

  sync.addEventListener("left", (/** @type {any} */ event) => {
    const { room, event: membership } = event.detail;
    if (!room?.getState(SERVER_EVENT) || !membership) return;
    const text = removalNotice(membership, userId, room.name);
    if (text) show(text);
  });
  return { el };
}
