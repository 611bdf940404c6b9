// Small overlays of the chat: a confirm dialog, the emoji picker and menus (popovers).

import { h } from "../dom.js";
import { EMOJI } from "../emoji.js";

/** A modal yes/no question; resolves true when confirmed. */
export function confirmAction({ title, text, confirm = "Delete", danger = true, preview = null }) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "dialog small", "data-testid": "confirm-dialog" },
      h("header", { class: "dialog-header" }, h("h2", { class: "dialog-title", text: title })),
      h("div", { class: "dialog-body" }, h("p", { class: "muted", text }), preview),
      h(
        "footer",
        { class: "dialog-footer" },
        h("button", { type: "button", class: "button", "data-testid": "confirm-cancel", text: "Cancel", onclick: () => done(false) }),
        h("button", {
          type: "button",
          class: `button ${danger ? "danger" : "primary"}`,
          "data-testid": "confirm-ok",
          text: confirm,
          onclick: () => done(true),
        }),
      ),
    );
    function done(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("[data-testid=confirm-ok]").focus();
  });
}

let openPopover = null;

/** Close whatever popover is open. */
export function closePopover() {
  openPopover?.remove();
  openPopover = null;
}

document.addEventListener("mousedown", (event) => {
  if (openPopover && !openPopover.contains(event.target)) closePopover();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && openPopover) closePopover();
});

/** Show `content` in a popover next to `anchor`, kept inside the window. */
export function showPopover(anchor, content, { testid = "popover", align = "end" } = {}) {
  closePopover();
  const pop = h("div", { class: "popover", "data-testid": testid, role: "dialog" }, content);
  document.body.append(pop);
  const rect = anchor.getBoundingClientRect();
  const width = pop.offsetWidth;
  const height = pop.offsetHeight;
  let left = align === "end" ? rect.right - width : rect.left;
  let top = rect.top - height - 8;
  if (top < 8) top = rect.bottom + 8;
  left = Math.max(8, Math.min(left, window.innerWidth - width - 8));
  top = Math.max(8, Math.min(top, window.innerHeight - height - 8));
  // CSSOM properties, not a style attribute: allowed under the page's CSP.
  pop.style.left = `${left}px`;
  pop.style.top = `${top}px`;
  openPopover = pop;
  return pop;
}

/** The emoji picker: calls `onPick(emoji)` and closes. */
export function pickEmoji(anchor, onPick) {
  const grid = h(
    "div",
    { class: "emoji-grid" },
    EMOJI.map((emoji) =>
      h("button", {
        type: "button",
        class: "emoji-choice",
        "data-testid": "emoji-choice",
        "data-emoji": emoji,
        title: emoji,
        text: emoji,
        onclick: () => {
          closePopover();
          onPick(emoji);
        },
      }),
    ),
  );
  return showPopover(anchor, grid, { testid: "emoji-picker" });
}

/**
 * A menu of `[label, action, {danger, testid}]` entries.
 * @param {Element} anchor
 * @param {Array<[string, (() => void)?, {danger?: boolean, testid?: string}?]>} entries
 * @param {{testid?: string, align?: string}} [options]
 */
export function showMenu(anchor, entries, { testid = "menu", align = "start" } = {}) {
  const list = h(
    "div",
    { class: "menu", role: "menu" },
    entries.map(([label, action, options = {}]) =>
      label === "-"
        ? h("div", { class: "menu-separator", role: "separator" })
        : h("button", {
            type: "button",
            role: "menuitem",
            class: `menu-item${options.danger ? " danger" : ""}`,
            "data-testid": options.testid,
            text: label,
            onclick: () => {
              closePopover();
              action();
            },
          }),
    ),
  );
  const pop = showPopover(anchor, list, { testid, align });
  pop.style.top = `${anchor.getBoundingClientRect().bottom + 6}px`;
  return pop;
}
