// Building DOM nodes. Strings always become text nodes: nothing here parses HTML.

/**
 * Create an element. `props` sets attributes, except: `class`, `text` (textContent),
 * `dataset`, and `on<event>` functions (listeners). Children are nodes or strings.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Grow a textarea with its text, up to 240 px (the composer, a message being edited). */
export function autosize(area) {
  area.style.height = "auto";
  area.style.height = `${Math.min(area.scrollHeight, 240)}px`;
}

/** The page's settings, from <meta> tags (the CSP forbids inline script). */
export function readPageConfig(doc = document) {
  const meta = (name) => doc.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
  return {
    brandName: meta("guilds-brand-name") || "Guilds",
    homeserverUrl: meta("guilds-homeserver").replace(/\/+$/, ""),
    serverName: meta("guilds-server-name"),
  };
}
