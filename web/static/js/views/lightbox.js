// A larger view of an image in a message, over the page: closed by Esc, the close button or a
// click beside the image; the original can be saved from it.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { downloadFile, loadImage } from "../media.js";

/**
 * Open the image behind `mxc` in a modal <dialog> (which gives Esc and the focus trap).
 * @param {import("../matrix.js").MatrixClient} client
 * @param {{mxc: string, name: string}} image
 */
export function openLightbox(client, { mxc, name }) {
  const img = h("img", { class: "lightbox-image", alt: name, "data-testid": "lightbox-image" });
  loadImage(img, client, mxc);
  const dialog = h(
    "dialog",
    { class: "lightbox", "data-testid": "lightbox", "aria-label": name || "Image" },
    h(
      "div",
      { class: "lightbox-bar" },
      h("span", { class: "lightbox-name", text: name }),
      h(
        "button",
        {
          type: "button",
          class: "icon-button",
          "data-testid": "lightbox-download",
          title: "Save the original",
          "aria-label": "Save the original",
          onclick: () => downloadFile(client, mxc, name).catch((error) => console.warn("download failed", error)),
        },
        icon("download"),
      ),
      h(
        "button",
        { type: "button", class: "icon-button", "data-testid": "lightbox-close", title: "Close", "aria-label": "Close", onclick: () => dialog.close() },
        icon("x"),
      ),
    ),
    img,
  );
  // A click on the backdrop (the dialog itself, not the image or the bar) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
