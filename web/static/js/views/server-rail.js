// The server rail, as in Discord: Home, the direct conversations with something new, every
// server with its unread and mention badges, and "Add a server".

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { SELECTION_KEYS } from "../store.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../store.js").ShellStore} options.store
 * @param {ReturnType<typeof import("./unread.js").createUnread>} options.unread
 * @param {{isServerMuted: (serverId: string) => boolean}} options.notify
 * @param {{railEl: HTMLElement, renderRail: () => void}} options.dms  the DMs' avatars (views/dms.js)
 * @param {(serverId: string|null) => void} options.onSelect  a server (null: Home) clicked
 * @param {() => void} options.onAdd  "Add a server" clicked
 */
export function createServerRail({ client, store, unread, notify, dms, onSelect, onAdd }) {
  const railServers = h("div", { class: "rail-servers", "data-testid": "rail-servers" });
  const homeButton = h(
    "button",
    { type: "button", class: "rail-item home", title: "Home", "aria-label": "Home", "data-testid": "rail-home", onclick: () => onSelect(null) },
    h("span", { class: "brand-mark small", "aria-hidden": "true" }),
  );
  const addButton = h("button", {
    type: "button",
    class: "rail-item add",
    title: "Add a server",
    "aria-label": "Add a server",
    "data-testid": "add-server",
    onclick: () => onAdd(),
  }, icon("plus", { size: 24 }));
  const el = h(
    "nav",
    { class: "server-rail", "aria-label": "Servers", "data-testid": "server-rail" },
    homeButton,
    dms.railEl,
    h("div", { class: "rail-separator", "aria-hidden": "true" }),
    railServers,
    addButton,
  );

  function render() {
    const { servers, order, activeServer } = store.state;
    homeButton.classList.toggle("selected", activeServer === null);
    dms.renderRail();
    railServers.replaceChildren(
      ...order
        .map((sid) => servers.get(sid))
        .filter(Boolean)
        .map((server) => {
          const counts = unread.ofServer(server);
          const selected = server.server_id === activeServer;
          return h(
            "button",
            {
              type: "button",
              class: `rail-item server${selected ? " selected" : ""}${counts.notifications ? " unread" : ""}${notify.isServerMuted(server.server_id) ? " muted" : ""}`,
              "data-testid": "rail-server",
              "data-server-id": server.server_id,
              title: server.name,
              "aria-label": server.name,
              "aria-current": selected ? "page" : false,
              onclick: () => onSelect(server.server_id),
            },
            avatar(client, { mxc: server.icon, name: server.name, id: server.server_id, size: 48, className: "rail-icon" }),
            h("span", { class: "rail-tooltip", role: "tooltip", text: server.name }),
            counts.highlights
              ? h("span", { class: "badge", "data-testid": "server-badge", text: String(counts.highlights) })
              : null,
          );
        }),
    );
  }

  store.subscribe(render, SELECTION_KEYS);
  return { el, render };
}
