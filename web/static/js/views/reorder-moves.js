// Carrying a sidebar move out (views/channel-reorder.js): moves run one after another, each
// computed from the sidebar as the previous one left it; a move shows at once, is sent as one
// PATCH, and is undone with the bridge's reason if refused. While it is on its way it is drawn
// over whatever the server is read as (`shown`), so a refresh made meanwhile does not put the
// old order back; once answered, the server is read again, so what stays is what the bridge
// wrote. What a move did is said for screen readers. The request and the words are pure
// functions (tests/unit_js/reorder-moves.test.mjs).

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { sidebarCategories, withCategoryMoved, withChannelMoved } from "../channel-order.js";

/**
 * How a moved channel or category is named in what is said about it: "#general", "Voice".
 * @param {"channel"|"category"} kind
 * @param {{name?: string} | undefined} item
 */
export function moveLabel(kind, item) {
  return kind === "channel" ? `#${item?.name ?? ""}` : (item?.name ?? "");
}

/**
 * The PATCH body of a channel's move: its new order, and its category when that changes.
 * @param {{category_id?: string | null} | undefined} channel  as it was
 * @param {{position: string, categoryId: string | null}} move
 */
export function channelMoveBody(channel, move) {
  const body = { order: move.position };
  if ((channel?.category_id ?? null) !== move.categoryId) body.category_id = move.categoryId;
  return body;
}

/**
 * Where a move left a channel or category, as a screen reader hears it.
 * @param {any} server  with the move applied
 * @param {"channel"|"category"} kind
 * @param {string} id
 * @param {string} label  moveLabel's
 */
export function describePlace(server, kind, id, label) {
  if (kind === "category") {
    const index = sidebarCategories(server).findIndex((c) => c.category_id === id);
    return `${label} moved to position ${index + 1}.`;
  }
  const channel = server.channels.find((c) => c.channel_id === id);
  const category = server.categories.find((c) => c.category_id === channel?.category_id);
  return `${label} moved${category ? ` to ${category.name}` : " to the top"}.`;
}

/** Above the channel list: why a move was refused (dismissable), and what a move did (hidden). */
export function createReorderNotices() {
  const message = h("span", { class: "reorder-error-text" });
  const dismiss = h(
    "button",
    {
      type: "button",
      class: "icon-button",
      "aria-label": "Dismiss",
      title: "Dismiss",
      onclick: () => {
        errorEl.hidden = true;
      },
    },
    icon("x", { size: 16 }),
  );
  const errorEl = h("div", { class: "reorder-error", role: "alert", "data-testid": "reorder-error" }, message, dismiss);
  errorEl.hidden = true;
  // What a keyboard move did, for screen readers.
  const status = h("p", { class: "visually-hidden", role: "status", "data-testid": "reorder-status" });
  const el = h("div", { class: "reorder-notices" }, errorEl, status);
  return {
    el,
    /** @param {string} text */
    showError(text) {
      message.textContent = text;
      errorEl.hidden = false;
    },
    hideError() {
      errorEl.hidden = true;
    },
    /** @param {string} text */
    say(text) {
      status.textContent = text;
    },
  };
}

/**
 * @param {object} options
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {() => any} options.activeServer  the Server of the sidebar as last read, or undefined
 * @param {(server: any) => boolean} options.mayReorder
 * @param {() => void} options.render  draw the sidebar again
 * @param {(sid: string) => Promise<void>|void} options.refresh  read the Server from the bridge
 * @param {ReturnType<typeof createReorderNotices>} options.notices
 * @param {(kind: "channel"|"category", id: string) => void} options.refocus  focus the moved row
 */
export function createMoveQueue({ api, activeServer, mayReorder, render, refresh, notices, refocus }) {
  let queue = Promise.resolve();
  /** @type {{sid: string, kind: "channel"|"category", id: string, move: any}|null} the move on its way */
  let pending = null;

  /** The server as the sidebar draws it: as last read, with the move on its way applied. */
  function shown(server) {
    if (!server || !pending || pending.sid !== server.server_id) return server;
    const { kind, id, move } = pending;
    return kind === "channel" ? withChannelMoved(server, id, move) : withCategoryMoved(server, id, move);
  }
  const current = () => shown(activeServer());

  /**
   * Queue a move: when its turn comes, `plan(server)` says what it is (null: nothing to do).
   * @param {"channel"|"category"} kind
   * @param {string} id
   * @param {(server: any) => any} plan  channelMove or categoryMove of the server shown then
   * @param {{focus?: boolean}} [options]
   */
  function enqueue(kind, id, plan, options) {
    queue = queue.then(() => carryOut(kind, id, plan, options));
  }

  /** Show the move, send it, undo it if refused. */
  async function carryOut(kind, id, plan, { focus = false } = {}) {
    const before = current();
    const move = before && mayReorder(before) ? plan(before) : null;
    if (!move) return;
    const sid = before.server_id;
    const item =
      kind === "channel"
        ? before.channels.find((c) => c.channel_id === id)
        : before.categories.find((c) => c.category_id === id);
    const label = moveLabel(kind, item);
    notices.hideError();
    pending = { sid, kind, id, move };
    render();
    if (focus) refocus(kind, id);
    notices.say(describePlace(current(), kind, id, label));
    try {
      if (kind === "channel") {
        await api.updateChannel(sid, id, channelMoveBody(item, move));
      } else {
        await api.updateCategory(sid, id, { order: move.position });
      }
      // Drawn over until the server is read with it, so the old order does not flash back.
      await refresh(sid);
      pending = null;
      render();
    } catch (error) {
      pending = null;
      render();
      notices.showError(`Could not move ${label}: ${describeError(error)}`);
      notices.say(`${label} was not moved.`);
      await refresh(sid);
    } finally {
      pending = null;
      if (focus) refocus(kind, id);
    }
  }

  return { enqueue, shown, current };
}
