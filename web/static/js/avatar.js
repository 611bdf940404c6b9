// A person's or server's avatar, drawn the same everywhere (user panel, messages, member list,
// dialogs, calls): the mxc image when there is one, else initials on a colour derived from the id.

import { h } from "./dom.js";
import { loadImage } from "./media.js";

/** Initials for an avatar without an image. */
export function initials(name) {
  const words = String(name || "?").replace(/^[@#]/, "").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] ?? "?").slice(0, 2);
  return [...letters].slice(0, 2).join("").toUpperCase() || "?";
}

/** One of eight colours, from the id (so a person has the same colour whatever their name). */
export function hueOf(text) {
  let hash = 0;
  for (const c of String(text ?? "")) hash = (hash * 31 + c.codePointAt(0)) | 0;
  return Math.abs(hash) % 8;
}

/**
 * An avatar element.
 * @param {import("./matrix.js").MatrixClient} client  fetches the image (with the token)
 * @param {{mxc?: string|null, name?: string|null, id?: string, size?: number, className?: string}} options
 */
export function avatar(client, { mxc, name, id, size = 40, className = "avatar" }) {
  const el = h("div", { class: `${className} hue-${hueOf(id ?? name)}`, "aria-hidden": "true", "data-avatar-of": id ?? "", text: initials(name) });
  if (mxc && client) {
    const img = h("img", { alt: "", class: "avatar-img" });
    img.addEventListener("load", () => el.replaceChildren(img));
    loadImage(img, client, mxc, { size: size * 2 });
  }
  return el;
}
