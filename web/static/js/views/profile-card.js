// A person's card, next to their name or avatar (in a chat, the member list, a DM): their face,
// name and user id, and "Message" to open the DM with them (none on one's own card).

import { h } from "../dom.js";
import { avatar } from "../avatar.js";
import { closePopover, showPopover } from "./popups.js";

/**
 * @param {Element} anchor
 * @param {object} person
 * @param {import("../matrix.js").MatrixClient} person.client  for the avatar
 * @param {string} person.userId
 * @param {string} person.name
 * @param {string | null} person.avatar  `mxc://`
 * @param {boolean} person.self  one's own card: no "Message"
 * @param {() => void} person.onMessage
 */
export function showProfileCard(anchor, { client, userId, name, avatar: mxc, self, onMessage }) {
  const card = h(
    "div",
    { class: "profile-card", "data-user-id": userId },
    avatar(client, { mxc, name, id: userId, size: 80, className: "avatar large" }),
    h("strong", { class: "profile-name", "data-testid": "profile-name", text: name }),
    h("span", { class: "muted small profile-id", text: userId }),
    self
      ? h("span", { class: "muted small", text: "That's you." })
      : h("button", {
          type: "button",
          class: "button primary wide",
          "data-testid": "profile-message",
          text: `Message @${name}`,
          onclick: () => {
            closePopover();
            onMessage();
          },
        }),
  );
  const pop = showPopover(anchor, card, { testid: "profile-card", align: "start" });
  pop.querySelector("button")?.focus();
}
