// Modal dialogs for the management screens: a <dialog> built with DOM APIs, Esc to close, focus
// kept inside, errors shown inline. Every string given here is inserted as text.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { MatrixError } from "../matrix.js";

// The shell's authenticated-media cache (blob: URLs; the token never goes into a URL).
const media = import("../media.js").catch(() => null);

const FOCUSABLE =
  'button:not([disabled]), [href], input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * Open a modal dialog.
 * @param {object} options
 * @param {string} options.title
 * @param {string} [options.subtitle]
 * @param {string} options.testid  `data-testid` of the <dialog>
 * @param {string} [options.size]  "small" | "wide"
 * @param {(Node|string)[]} [options.body]
 * @param {(Node|string)[]} [options.footer]
 * @param {() => void} [options.onClose]
 * @param {() => void} [options.onSubmit]  wraps body and footer in a form: Enter or a submit
 *   button in the footer calls it
 * @returns {{dialog: HTMLDialogElement, body: HTMLElement, footer: HTMLElement, close: () => void,
 *   showError: (e: unknown) => void, clearError: () => void, setBusy: (b: boolean) => void}}
 */
export function openDialog({
  title,
  subtitle,
  testid,
  size = "",
  body = [],
  footer = [],
  onClose,
  onSubmit,
}) {
  const titleId = `dlg-title-${Math.random().toString(36).slice(2)}`;
  const error = h("p", { class: "form-error dialog-error", role: "alert", "data-testid": "dialog-error" });
  error.hidden = true;
  const bodyEl = h("div", { class: "dialog-body" }, body);
  const footerEl = h("footer", { class: "dialog-footer" }, footer);
  const closeButton = h("button", {
    type: "button",
    class: "dialog-close",
    "aria-label": "Close",
    "data-testid": "dialog-close",
    onclick: () => close(),
  }, icon("x"));
  const dialog = h(
    "dialog",
    { class: `dialog ${size}`.trim(), "data-testid": testid, "aria-labelledby": titleId },
    h(
      "header",
      { class: "dialog-header" },
      h("h2", { class: "dialog-title", id: titleId, text: title }),
      subtitle ? h("p", { class: "dialog-subtitle muted", text: subtitle }) : null,
      closeButton,
    ),
    error,
    onSubmit
      ? h(
          "form",
          {
            class: "dialog-form",
            novalidate: true,
            onsubmit: (event) => {
              event.preventDefault();
              onSubmit();
            },
          },
          bodyEl,
          footerEl,
        )
      : [bodyEl, footerEl],
  );

  let closed = false;
  const opener = document.activeElement;
  function close() {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    onClose?.();
  }
  // Esc fires "cancel"; a close by any other path fires "close": both end here.
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  dialog.addEventListener("close", () => close());
  // A click on the backdrop (the dialog element itself, outside its box) closes it.
  dialog.addEventListener("mousedown", (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right &&
      event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) close();
  });
  // showModal makes the page inert; Tab still reaches the browser's own UI, so wrap it here.
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter(
      (el) => !el.closest("[hidden]") && el.getClientRects().length > 0,
    );
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  // Focus the first field, or else the first button of the footer, never the close cross.
  const first =
    bodyEl.querySelector("input:not([disabled]), select, textarea") ??
    bodyEl.querySelector(FOCUSABLE) ??
    footerEl.querySelector(FOCUSABLE);
  (first ?? closeButton).focus();

  function showError(err) {
    error.textContent = typeof err === "string" ? err : errorSentence(err);
    error.hidden = !error.textContent;
    if (!error.hidden) error.scrollIntoView?.({ block: "nearest" });
  }
  function clearError() {
    showError("");
  }
  function setBusy(busy) {
    dialog.setAttribute("aria-busy", String(busy));
    for (const el of dialog.querySelectorAll("button, input, select, textarea")) {
      if (el === closeButton) continue;
      if (busy) {
        if (!el.disabled) {
          el.disabled = true;
          el.dataset.busyDisabled = "1";
        }
      } else if (el.dataset.busyDisabled) {
        el.disabled = false;
        delete el.dataset.busyDisabled;
      }
    }
  }
  return { dialog, body: bodyEl, footer: footerEl, close, showError, clearError, setBusy };
}

/** A check made in the browser failed: its message is meant for the person, as it is. */
export class Refusal extends Error {}

/** The sentence to show for a failed request: the API's own `error` sentence when it has one. */
export function errorSentence(err) {
  if (err instanceof Refusal) return err.message;
  if (err instanceof MatrixError && err.message && err.errcode !== "M_LIMIT_EXCEEDED") {
    if (["M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"].includes(err.errcode)) return describeError(err);
    if (err.status >= 500 && !err.data?.error) return describeError(err);
    return err.message;
  }
  return describeError(err);
}

/**
 * Ask for confirmation. Resolves true when confirmed. With `action`, the dialog stays open while
 * it runs and shows its error inline; it resolves true only once `action` has succeeded.
 * @param {object} options
 * @param {string} options.title
 * @param {string} options.message
 * @param {string} [options.confirmLabel]
 * @param {boolean} [options.danger]
 * @param {string} [options.testid]
 * @param {Node} [options.extra]  e.g. a reason field
 * @param {() => Promise<unknown>} [options.action]
 */
export function confirmDialog({
  title,
  message,
  confirmLabel = "Confirm",
  danger = false,
  testid = "confirm-dialog",
  extra = null,
  action = null,
}) {
  return new Promise((resolve) => {
    let done = false;
    const cancel = h("button", {
      type: "button",
      class: "button link",
      "data-testid": "confirm-cancel",
      text: "Cancel",
      onclick: () => ui.close(),
    });
    const ok = h("button", {
      type: "submit",
      class: `button ${danger ? "danger" : "primary"}`,
      "data-testid": "confirm-ok",
      text: confirmLabel,
    });
    const ui = openDialog({
      title,
      testid,
      size: "small",
      body: [h("p", { class: "confirm-message", "data-testid": "confirm-message", text: message }), extra],
      footer: [cancel, ok],
      onClose: () => resolve(done),
      onSubmit,
    });
    if (!extra) ok.focus();

    async function onSubmit() {
      if (!action) {
        done = true;
        ui.close();
        return;
      }
      ui.clearError();
      ui.setBusy(true);
      try {
        await action();
        done = true;
        ui.close();
      } catch (err) {
        console.warn(`${title} failed`, err);
        ui.setBusy(false);
        ui.showError(err);
      }
    }
  });
}

/** A labelled field: `<div class="field"><label>…</label>control hint</div>`. */
export function field(label, control, hint = "") {
  if (!control.id) control.id = `f-${Math.random().toString(36).slice(2)}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id, text: label }),
    control,
    hint ? h("p", { class: "field-hint muted", text: hint }) : null,
  );
}

/** Initials of a name, as Discord shows a server without an icon. */
export function initials(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  const text = words.slice(0, 3).map((w) => [...w][0]).join("");
  return text || "?";
}

/**
 * A round server icon: the image behind an mxc URI when the client can fetch it, initials
 * otherwise (and while it loads).
 */
export function serverIcon(name, mxc, matrix, { size = 64, className = "server-icon" } = {}) {
  const el = h("div", { class: className, "data-testid": "server-icon" });
  el.append(h("span", { class: "server-icon-initials", text: initials(name) }));
  if (mxc && matrix) {
    media
      .then((m) => m.mediaUrl(matrix, mxc, { size }))
      .then((url) => {
        el.replaceChildren(h("img", { alt: "", src: url }));
        el.classList.add("has-image");
      })
      .catch((err) => console.warn("icon not shown", err));
  }
  return el;
}
