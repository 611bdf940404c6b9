// A panel that drops from the channel header (search results, pinned messages), as in Discord:
// one open at a time, closed by its button, Escape or a click elsewhere in the page.

import { h } from "../dom.js";
import { icon } from "../icons.js";

/** @type {{close: () => void} | null} */
let openPanel = null;

/**
 * @param {{testid: string, title: string, toolbar?: Node | null}} options
 */
export function createHeaderPanel({ testid, title, toolbar = null }) {
  const heading = h("h2", { class: "header-panel-title", text: title });
  const body = h("div", { class: "header-panel-body", "data-testid": `${testid}-body` });
  const el = h(
    "section",
    { class: "header-panel", "data-testid": testid, role: "dialog", "aria-label": title },
    h(
      "header",
      { class: "header-panel-header" },
      heading,
      toolbar,
      h("button", {
        type: "button",
        class: "icon-button",
        "data-testid": `${testid}-close`,
        title: "Close",
        "aria-label": "Close",
        onclick: () => panel.close(),
      }, icon("x", { size: 18 })),
    ),
    body,
  );
  el.hidden = true;

  const panel = {
    el,
    body,
    get isOpen() {
      return !el.hidden;
    },
    setTitle(text) {
      heading.textContent = text;
    },
    open() {
      if (openPanel && openPanel !== panel) openPanel.close();
      openPanel = panel;
      el.hidden = false;
    },
    close() {
      el.hidden = true;
      if (openPanel === panel) openPanel = null;
    },
  };
  return panel;
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && openPanel) openPanel.close();
});
document.addEventListener("mousedown", (event) => {
  const target = /** @type {Element|null} */ (event.target instanceof Element ? event.target : null);
  // Inside the panel, or on the controls that open one (they toggle it themselves).
  if (!openPanel || target?.closest(".header-panel, .channel-tools")) return;
  openPanel.close();
});
