// The tools at the right of a channel's header, or a DM's: pinned messages and the search box.

import { h } from "../dom.js";
import { createPinsButton } from "./pins.js";
import { createSearchBox } from "./search.js";

/**
 * Where the tools are: a server and its open channel (null: none open), or a DM (`server` null,
 * `channel` its room and the partner's name, `dm` the user and how to mark one of its messages).
 * @typedef {{server: any, channel: any, dm?: {userId: string, reveal: (eventId: string) => void}}} Place
 */

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {() => Place | null} options.current  the open server and channel, or DM; null on Home
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
      const here = options.current();
      el.hidden = !(here?.server || here?.dm);
      pins.update();
      search.update();
    },
  };
}
