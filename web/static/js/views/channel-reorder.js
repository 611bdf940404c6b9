// Reordering the sidebar: drag a channel within or across categories, or a category, and
// Alt+ArrowUp / Alt+ArrowDown on a focused channel or category name for the keyboard.
//
// Only for those with manage_channels (the bridge refuses anyone else, and so does the module for
// a write made with another client). A move shows at once, is sent as one PATCH (channel-order.js
// says which), and is undone with the reason shown if the bridge refuses it. While it is on its
// way it is drawn over whatever the server is read as (`shown`), so a refresh made meanwhile
// does not put the old order back; once answered, the server is read again, so what stays is
// what the bridge wrote. Other people see it when their sync brings the new `m.space.child`
// orders (views/home.js refreshes the server then).

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import {
  categoryMove,
  channelMove,
  channelStep,
  sidebarCategories,
  sidebarChannels,
  withCategoryMoved,
  withChannelMoved,
} from "../channel-order.js";

const KEYS = "Alt+ArrowUp Alt+ArrowDown";

/**
 * @param {object} options
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {() => any} options.activeServer  the Server of the sidebar as last read, or undefined
 * @param {() => void} options.render  draw the sidebar again
 * @param {(sid: string) => Promise<void>|void} options.refresh  read the Server from the bridge
 */
export function createChannelReorder({ api, activeServer, render, refresh }) {
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

  /** @type {{kind: "channel"|"category", id: string}|null} */
  let dragging = null;
  // Moves run one after another: each is computed from the sidebar as the previous one left it.
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
  let marked = null;
  /** @type {HTMLElement|null} the channel list listened on */
  let attachedTo = null;

  function mayReorder(server) {
    return Boolean(server?.me?.permissions?.includes("manage_channels"));
  }

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

  // --- where a drop lands ------------------------------------------------------------------------

  const sectionCategory = (section) => section.getAttribute("data-category-id") || null;

  /** The drop target under the pointer: the move's arguments and the element to mark. */
  function dropTarget(event) {
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

  function unmark() {
    marked?.classList.remove("drop-before", "drop-after", "drop-into");
    marked = null;
  }

  function mark(element, where) {
    if (marked === element && element?.classList.contains(`drop-${where}`)) return;
    unmark();
    if (!element) return;
    element.classList.add(`drop-${where}`);
    marked = element;
  }

  /** The move a drop target asks for, or null when it changes nothing or is not allowed. */
  function moveFor(server, target) {
    if (!target || !dragging) return null;
    if (dragging.kind === "category") return categoryMove(server, dragging.id, target.index);
    return channelMove(server, dragging.id, { categoryId: target.categoryId, index: target.index });
  }

  // --- carrying a move out ---------------------------------------------------------------------

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
    const label = kind === "channel" ? `#${item?.name ?? ""}` : (item?.name ?? "");
    errorEl.hidden = true;
    pending = { sid, kind, id, move };
    render();
    if (focus) refocus(kind, id);
    status.textContent = describePlace(current(), kind, id, label);
    try {
      if (kind === "channel") {
        const body = { order: move.position };
        if ((item?.category_id ?? null) !== move.categoryId) body.category_id = move.categoryId;
        await api.updateChannel(sid, id, body);
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
      message.textContent = `Could not move ${label}: ${describeError(error)}`;
      errorEl.hidden = false;
      status.textContent = `${label} was not moved.`;
      await refresh(sid);
    } finally {
      pending = null;
      if (focus) refocus(kind, id);
    }
  }

  function describePlace(server, kind, id, label) {
    if (kind === "category") {
      const index = sidebarCategories(server).findIndex((c) => c.category_id === id);
      return `${label} moved to position ${index + 1}.`;
    }
    const channel = server.channels.find((c) => c.channel_id === id);
    const category = server.categories.find((c) => c.category_id === channel?.category_id);
    return `${label} moved${category ? ` to ${category.name}` : " to the top"}.`;
  }

  function refocus(kind, id) {
    const selector =
      kind === "channel"
        ? `[data-testid="channel"][data-channel-id="${CSS.escape(id)}"]`
        : `section.category[data-category-id="${CSS.escape(id)}"] .category-name`;
    /** @type {HTMLElement|null} */ (attachedTo?.querySelector(selector))?.focus();
  }

  // --- events ------------------------------------------------------------------------------------

  /** Listen on the sidebar's channel list (it stays; its contents are drawn again and again). */
  function attach(root) {
    attachedTo = root;
    root.addEventListener("dragstart", (event) => {
      const target = /** @type {Element} */ (event.target);
      const server = current();
      if (!(target instanceof Element) || !mayReorder(server)) return;
      const source = target.closest("[data-drag-channel], [data-drag-category]");
      if (!source) return;
      const channel = source.getAttribute("data-drag-channel");
      dragging = channel ? { kind: "channel", id: channel } : { kind: "category", id: source.getAttribute("data-drag-category") };
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragging.id);
      (dragging.kind === "category" ? source.closest("section.category") : source).classList.add("dragging");
      errorEl.hidden = true;
    });
    root.addEventListener("dragover", (event) => {
      if (!dragging) return;
      const target = dropTarget(event);
      const server = current();
      const move = target && moveFor(server, target);
      if (!move) {
        unmark();
        return;
      }
      event.preventDefault(); // a drop is allowed here
      event.dataTransfer.dropEffect = "move";
      if (dragging.kind === "channel") landing(root, server, dragging.id, move);
      else mark(target.mark, target.where);
    });
    root.addEventListener("drop", (event) => {
      if (!dragging) return;
      event.preventDefault();
      const target = dropTarget(event);
      const move = moveFor(current(), target);
      const { kind, id } = dragging;
      endDrag(root);
      if (move) enqueue(kind, id, () => move);
    });
    root.addEventListener("dragend", () => endDrag(root));
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
        enqueue("channel", channelId, (now) => {
          const step = channelStep(now, channelId, delta);
          return step && channelMove(now, channelId, step);
        }, { focus: true });
      } else {
        enqueue("category", categoryId, (now) => {
          const index = sidebarCategories(now).findIndex((c) => c.category_id === categoryId) + delta;
          return index >= 0 ? categoryMove(now, categoryId, index) : null;
        }, { focus: true });
      }
    });
  }

  /** Mark where a channel will land (kept inside its kind, so not always under the pointer). */
  function landing(root, server, id, move) {
    const after = sidebarChannels(withChannelMoved(server, id, move), move.categoryId);
    const at = after.findIndex((c) => c.channel_id === id);
    const rowOf = (channel) => root.querySelector(`[data-drag-channel="${CSS.escape(channel.channel_id)}"]`);
    if (after[at + 1]) mark(rowOf(after[at + 1]), "before");
    else if (after[at - 1]) mark(rowOf(after[at - 1]), "after");
    else mark(root.querySelector(`section.category[data-category-id="${CSS.escape(move.categoryId ?? "")}"]`), "into");
  }

  function endDrag(root) {
    if (!dragging) return;
    unmark();
    for (const node of root.querySelectorAll(".dragging")) node.classList.remove("dragging");
    dragging = null;
    render(); // what changed during the drag was not drawn (home.js waits for its end)
  }

  return { el, decorate, attach, shown, dragging: () => dragging !== null };
}
