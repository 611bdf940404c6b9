// Where direct conversations are listed: their avatars in the server rail (those with something
// new: an invitation or unread messages) and the DM list of the Home view's sidebar.

import { h } from "../dom.js";
import { avatar } from "../avatar.js";

/**
 * @typedef {object} DmEntry  one DM as listed (views/dms.js `entries`)
 * @property {string} roomId
 * @property {string} userId
 * @property {string} name
 * @property {string | null} avatar
 * @property {number} unread
 * @property {boolean} invite
 */

/**
 * Fill the rail's DM part with these DMs' avatars and badges (hidden when there are none).
 * @param {HTMLElement} el
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {DmEntry[]} options.items
 * @param {(roomId: string, userId: string) => void} options.onOpen
 */
export function renderDmRail(el, { client, items, onOpen }) {
  el.replaceChildren(
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
          onclick: () => onOpen(d.roomId, d.userId),
        },
        avatar(client, { mxc: d.avatar, name: d.name, id: d.userId, size: 48, className: "rail-icon" }),
        h("span", { class: "rail-tooltip", role: "tooltip", text: d.name }),
        h("span", { class: "badge", "data-testid": "rail-dm-badge", text: d.invite ? "!" : String(d.unread) }),
      ),
    ),
  );
  el.hidden = items.length === 0;
}

/**
 * The Home sidebar's DM list.
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {DmEntry[]} options.list
 * @param {string | null} options.selectedRoomId  the DM open
 * @param {(roomId: string, userId: string) => void} options.onOpen
 * @param {(entry: DmEntry) => HTMLElement} options.inviteActions  Accept / Decline of an invitation
 */
export function renderDmList({ client, list, selectedRoomId, onOpen, inviteActions }) {
  const ul = h("ul", { class: "dm-items" });
  for (const d of list) {
    const selected = selectedRoomId === d.roomId;
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
          onclick: () => onOpen(d.roomId, d.userId),
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
    if (d.invite) item.append(inviteActions(d));
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
