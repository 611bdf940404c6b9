// Reordering the sidebar: drag a channel within or across categories, or a category, and
// Alt+ArrowUp / Alt+ArrowDown on a focused channel or category name for the keyboard.
//
// A mouse drags with the platform's drag and drop; a finger (or pen) with pointer events
// (reorder-touch.js). Where a drop lands and its mark are reorder-drop.js; carrying a move out —
// shown at once, sent as one PATCH (channel-order.js says which), undone with the reason shown
// if the bridge refuses it, drawn over the server as read until it is read again — is
// reorder-moves.js. This module holds what is being dragged and wires them.
//
// Only for those with manage_channels (the bridge refuses anyone else, and so does the module for
// a write made with another client). Other people see a move when their sync brings the new
// `m.space.child` orders (views/home.js refreshes the server then).

import { categoryMove, channelMove, channelStep, sidebarCategories } from "../channel-order.js";
import { createDropMark, dropTarget } from "./reorder-drop.js";
import { createMoveQueue, createReorderNotices } from "./reorder-moves.js";
import { attachTouchDrag } from "./reorder-touch.js";

const KEYS = "Alt+ArrowUp Alt+ArrowDown";

function mayReorder(server) {
  return Boolean(server?.me?.permissions?.includes("manage_channels"));
}

/**
 * @param {object} options
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {() => any} options.activeServer  the Server of the sidebar as last read, or undefined
 * @param {() => void} options.render  draw the sidebar again
 * @param {(sid: string) => Promise<void>|void} options.refresh  read the Server from the bridge
 */
export function createChannelReorder({ api, activeServer, render, refresh }) {
  const notices = createReorderNotices();
  const moves = createMoveQueue({ api, activeServer, mayReorder, render, refresh, notices, refocus });
  const { current } = moves;
  const marks = createDropMark();

  /** @type {{kind: "channel"|"category", id: string}|null} */
  let dragging = null;
  /** @type {HTMLElement|null} the channel list listened on */
  let attachedTo = null;
  /** @type {{pressing: () => boolean}|null} a finger's drags on it */
  let touch = null;
  const pressing = () => Boolean(touch?.pressing());

  /** Make the drawn sidebar draggable and keyboard-movable, for those who may reorder. */
  function decorate(list, server) {
    attachedTo?.classList.toggle("reorderable", mayReorder(server));
    if (!mayReorder(server)) return;
    for (const button of list.querySelectorAll('[data-testid="channel"][data-channel-id]')) {
      const row = button.closest(".channel-row");
      row.setAttribute("draggable", "true");
      row.dataset.dragChannel = button.getAttribute("data-channel-id");
      button.setAttribute("aria-keyshortcuts", KEYS);
    }
    for (const section of list.querySelectorAll("section.category[data-category-id]")) {
      const id = section.getAttribute("data-category-id");
      const header = section.querySelector(".category-header");
      if (!id || !header) continue;
      header.setAttribute("draggable", "true");
      header.dataset.dragCategory = id;
      const name = header.querySelector(".category-name");
      name.setAttribute("tabindex", "0");
      name.setAttribute("aria-keyshortcuts", KEYS);
    }
  }

  /** The move a drop target asks for, or null when it changes nothing or is not allowed. */
  function moveFor(server, target) {
    if (!target || !dragging) return null;
    if (dragging.kind === "category") return categoryMove(server, dragging.id, target.index);
    return channelMove(server, dragging.id, { categoryId: target.categoryId, index: target.index });
  }

  function refocus(kind, id) {
    const selector =
      kind === "channel"
        ? `[data-testid="channel"][data-channel-id="${CSS.escape(id)}"]`
        : `section.category[data-category-id="${CSS.escape(id)}"] .category-name`;
    /** @type {HTMLElement|null} */ (attachedTo?.querySelector(selector))?.focus();
  }

  // --- a drag's steps, the mouse's and a finger's ----------------------------------------------

  /** The row or category header a press or drag starts on, for those who may reorder. */
  function dragSource(target) {
    if (!(target instanceof Element) || !mayReorder(current())) return null;
    return target.closest("[data-drag-channel], [data-drag-category]");
  }

  /** Pick `source` up: what is dragged, shown faded. */
  function pickUp(source) {
    const channel = source.getAttribute("data-drag-channel");
    dragging = channel ? { kind: "channel", id: channel } : { kind: "category", id: source.getAttribute("data-drag-category") };
    (dragging.kind === "category" ? source.closest("section.category") : source).classList.add("dragging");
    notices.hideError();
  }

  /** Mark where what is dragged would land at `point`; answers whether it may land there. */
  function hover(root, point) {
    const target = dropTarget(dragging, point);
    const server = current();
    const move = target && moveFor(server, target);
    if (!move) {
      marks.unmark();
      return false;
    }
    if (dragging.kind === "channel") marks.landing(root, server, dragging.id, move);
    else marks.mark(target.mark, target.where);
    return true;
  }

  /** Drop what is dragged at `point` (nothing happens where it may not land). */
  function drop(root, point) {
    const move = moveFor(current(), dropTarget(dragging, point));
    const { kind, id } = dragging;
    endDrag(root);
    if (move) moves.enqueue(kind, id, () => move);
  }

  function endDrag(root) {
    if (!dragging) return;
    marks.unmark();
    for (const node of root.querySelectorAll(".dragging")) node.classList.remove("dragging");
    dragging = null;
    render(); // what changed during the drag was not drawn (home.js waits for its end)
  }

  // --- events ------------------------------------------------------------------------------------

  /** Listen on the sidebar's channel list (it stays; its contents are drawn again and again). */
  function attach(root) {
    attachedTo = root;
    root.addEventListener("dragstart", (event) => {
      const source = dragSource(event.target);
      if (!source) return;
      if (pressing()) {
        event.preventDefault(); // a finger's drag is carried by pointer events (reorder-touch.js)
        return;
      }
      pickUp(source);
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragging.id);
    });
    root.addEventListener("dragover", (event) => {
      if (!dragging || pressing()) return;
      if (!hover(root, event)) return;
      event.preventDefault(); // a drop is allowed here
      event.dataTransfer.dropEffect = "move";
    });
    root.addEventListener("drop", (event) => {
      if (!dragging || pressing()) return;
      event.preventDefault();
      drop(root, event);
    });
    root.addEventListener("dragend", () => {
      if (!pressing()) endDrag(root);
    });
    touch = attachTouchDrag(root, {
      dragSource,
      pickUp,
      hover: (point) => hover(root, point),
      drop: (point) => drop(root, point),
      endDrag: () => endDrag(root),
      isDragging: () => dragging !== null,
    });
    root.addEventListener("keydown", (event) => {
      if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
      const server = current();
      const target = /** @type {Element} */ (event.target);
      if (!mayReorder(server) || !(target instanceof Element)) return;
      const delta = event.key === "ArrowUp" ? -1 : 1;
      const channelId = target.matches('[data-testid="channel"]') ? target.getAttribute("data-channel-id") : null;
      const categoryId = target.matches(".category-name") ? target.closest("section.category")?.getAttribute("data-category-id") : null;
      if (!channelId && !categoryId) return;
      event.preventDefault();
      if (channelId) {
        moves.enqueue("channel", channelId, (now) => {
          const step = channelStep(now, channelId, delta);
          return step && channelMove(now, channelId, step);
        }, { focus: true });
      } else {
        moves.enqueue("category", categoryId, (now) => {
          const index = sidebarCategories(now).findIndex((c) => c.category_id === categoryId) + delta;
          return index >= 0 ? categoryMove(now, categoryId, index) : null;
        }, { focus: true });
      }
    });
  }

  return { el: notices.el, decorate, attach, shown: moves.shown, dragging: () => dragging !== null };
}
