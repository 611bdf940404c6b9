// The tools at the right of a channel's header: pinned messages and the search box.

import { h } from "../dom.js";
import { createPinsButton } from "./pins.js";
import { createSearchBox } from "./search.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {() => {server: any, channel: any} | null} options.current  the open server and
 *   channel (channel null: none open); null on Home
 * @param {(serverId: string, userId: string) => string|null} options.roleColor
 */
export function createChannelTools(options) {
  const pins = createPinsButton(options);
  const search = createSearchBox(options);
  const el = h("div", { class: "channel-tools", "data-testid": "channel-tools" }, pins.el, search.el);
  return {
    el,
    /** Call when the open server or channel changes. */
    update() {
      el.hidden = !options.current()?.server;
      pins.update();
      search.update();
    },
  };
}
