// Icons as inline SVG from the vendored Lucide set (web/static/vendor/lucide): they draw the same
// on every system, where emoji and symbol characters depend on the fonts installed.

import { ICON_NODES } from "../vendor/lucide/icons.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An <svg> icon, hidden from assistive technology: the control it sits in carries the label
 * (`aria-label` or visible text). Drawn in `currentColor`, sized by `size` (CSS may override).
 * @param {string} name  a Lucide icon name listed in scripts/vendor-icons.mjs
 * @param {{size?: number, className?: string}} [options]
 * @returns {SVGSVGElement}
 */
export function icon(name, { size = 20, className = "" } = {}) {
  const nodes = ICON_NODES[name];
  if (!nodes) throw new Error(`no icon named ${name}: add it to scripts/vendor-icons.mjs`);
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG_NS, "svg"));
  const attributes = {
    class: `icon${className ? ` ${className}` : ""}`,
    "data-icon": name,
    width: String(size),
    height: String(size),
    viewBox: "0 0 24 24",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
    "aria-hidden": "true",
    focusable: "false",
  };
  for (const [key, value] of Object.entries(attributes)) svg.setAttribute(key, value);
  for (const [tag, attrs] of nodes) {
    const child = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) child.setAttribute(key, String(value));
    svg.append(child);
  }
  return svg;
}

/** The icon of each channel kind, as in Discord's channel list. */
export const CHANNEL_KIND_ICONS = Object.freeze({ text: "hash", voice: "volume-2", video: "video" });

/** Whether a channel (the provisioning API's Channel) is limited to some roles. */
export function isPrivateChannel(channel) {
  return Array.isArray(channel?.allowed_roles);
}

/**
 * A channel's kind icon, with a small lock over it when only some roles may enter it.
 * @param {{kind?: string, allowed_roles?: string[] | null}} channel
 * @param {{size?: number, className?: string}} [options]
 */
export function channelIcon(channel, { size = 20, className = "channel-icon" } = {}) {
  const locked = isPrivateChannel(channel);
  const el = document.createElement("span");
  el.className = `${className}${locked ? " private" : ""}`;
  el.setAttribute("aria-hidden", "true");
  el.dataset.kind = channel.kind ?? "text";
  el.append(icon(CHANNEL_KIND_ICONS[channel.kind] ?? "hash", { size }));
  if (locked) el.append(icon("lock", { size: Math.max(10, Math.round(size * 0.55)), className: "channel-lock" }));
  return el;
}

/** Show icon `name` as the only content of `el` (a button drawn again on each update). */
export function setIcon(el, name, options = {}) {
  if (el.childElementCount === 1 && el.firstElementChild.getAttribute("data-icon") === name) return;
  el.replaceChildren(icon(name, options));
}
