// Where a sidebar drag would land (views/channel-reorder.js): the drop target under the pointer
// or finger, read from the drawn sidebar, and the mark that shows it (a line before or after a
// row or category, or a category lit as a whole).

import { sidebarChannels, withChannelMoved } from "../channel-order.js";

const sectionCategory = (section) => section.getAttribute("data-category-id") || null;

/**
 * @typedef {{kind: "channel"|"category", id: string}} Dragged
 * @typedef {{index: number, categoryId?: string|null, mark: Element|null, where: "before"|"after"|"into"}} DropTarget
 */

/**
 * The drop target under the pointer: the move's arguments and the element to mark.
 * @param {Dragged} dragging
 * @param {{target: EventTarget|null, clientY: number}} event  a drag event, or where a finger is
 * @returns {DropTarget|null}
 */
export function dropTarget(dragging, event) {
  const target = /** @type {Element} */ (event.target);
  if (!(target instanceof Element) || !dragging) return null;
  const section = target.closest("section.category");
  if (!section) return null;
  if (dragging.kind === "category") {
    const sections = [...section.parentElement.querySelectorAll("section.category[data-category-id]")].filter(
      (s) => sectionCategory(s) && sectionCategory(s) !== dragging.id,
    );
    const id = sectionCategory(section);
    if (!id) return { index: 0, mark: sections[0] ?? null, where: "before" };
    if (id === dragging.id) return null;
    const rect = section.getBoundingClientRect();
    const after = event.clientY > rect.top + rect.height / 2;
    const index = sections.indexOf(section) + (after ? 1 : 0);
    return { index, mark: section, where: after ? "after" : "before" };
  }
  const categoryId = sectionCategory(section);
  const rows = [...section.querySelectorAll(".channel-row[data-drag-channel]")].filter(
    (r) => r.getAttribute("data-drag-channel") !== dragging.id,
  );
  const row = target.closest(".channel-row");
  if (row && rows.includes(row)) {
    const rect = row.getBoundingClientRect();
    const after = event.clientY > rect.top + rect.height / 2;
    return { categoryId, index: rows.indexOf(row) + (after ? 1 : 0), mark: row, where: after ? "after" : "before" };
  }
  if (target.closest(".category-header")) return { categoryId, index: 0, mark: section, where: "into" };
  return { categoryId, index: rows.length, mark: section, where: "into" };
}

/** The one drop mark shown at a time. */
export function createDropMark() {
  let marked = null;

  function unmark() {
    marked?.classList.remove("drop-before", "drop-after", "drop-into");
    marked = null;
  }

  /**
   * @param {Element|null} element
   * @param {"before"|"after"|"into"} where
   */
  function mark(element, where) {
    if (marked === element && element?.classList.contains(`drop-${where}`)) return;
    unmark();
    if (!element) return;
    element.classList.add(`drop-${where}`);
    marked = element;
  }

  /**
   * Mark where a channel will land (kept inside its kind, so not always under the pointer).
   * @param {Element} root  the channel list
   * @param {any} server
   * @param {string} id
   * @param {any} move  channelMove's
   */
  function landing(root, server, id, move) {
    const after = sidebarChannels(withChannelMoved(server, id, move), move.categoryId);
    const at = after.findIndex((c) => c.channel_id === id);
    const rowOf = (channel) => root.querySelector(`[data-drag-channel="${CSS.escape(channel.channel_id)}"]`);
    if (after[at + 1]) mark(rowOf(after[at + 1]), "before");
    else if (after[at - 1]) mark(rowOf(after[at - 1]), "after");
    else mark(root.querySelector(`section.category[data-category-id="${CSS.escape(move.categoryId ?? "")}"]`), "into");
  }

  return { mark, unmark, landing };
}
