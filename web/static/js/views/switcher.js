// The quick switcher (Ctrl+K, ⌘+K), as in Discord: one search box over the channels and members
// of every server, the servers and the DMs; arrow keys and Enter jump there, Esc closes.
//
// A combobox over a listbox (WAI-ARIA): focus stays in the search box, the highlighted option is
// named by aria-activedescendant, so a screen reader follows the arrow keys.

import { h } from "../dom.js";
import { channelIcon } from "../icons.js";
import { avatar } from "../avatar.js";

const MAX_RESULTS = 30;
// Discord's prefixes: "#" only channels, "@" only people, "*" only servers.
const PREFIX_KINDS = { "#": ["channel"], "@": ["user"], "*": ["server"] };
// Among equal matches: where one most often means to go.
const KIND_ORDER = { channel: 0, user: 1, server: 2 };

/** Lower case, accents off, so "Café" matches "cafe". */
export function fold(text) {
  return String(text ?? "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}

/**
 * How well `query` matches `text`: 0 for no match, more is better. An exact match beats a prefix,
 * a prefix beats the start of a word, a word start beats a substring (earlier is better), and a
 * subsequence ("gnrl" in "general") matches last, better when its letters sit close together.
 */
export function matchScore(query, text) {
  const q = fold(query).trim();
  const t = fold(text);
  if (!q) return 1;
  if (!t) return 0;
  if (t === q) return 1000;
  if (t.startsWith(q)) return 900 - Math.min(t.length - q.length, 99);
  const at = t.indexOf(q);
  if (at > 0) {
    const wordStart = /[\s\-_.:#@/]/.test(t[at - 1]);
    return (wordStart ? 700 : 500) - Math.min(at, 99);
  }
  // In order, not necessarily together.
  let from = 0;
  let gaps = 0;
  let last = -1;
  for (const c of q) {
    if (c === " ") continue;
    const i = t.indexOf(c, from);
    if (i < 0) return 0;
    if (last >= 0 && i > last + 1) gaps += i - last - 1;
    last = i;
    from = i + 1;
  }
  return Math.max(1, 300 - gaps * 10 - Math.min(t.indexOf(fold(q)[0]), 50));
}

/**
 * The items matching `query`, best first. An item: {kind: "channel"|"user"|"server", label,
 * keywords?: [string] (matched at half weight), boost?: number (breaks ties: recent, unread)}.
 */
export function rankItems(items, query, limit = MAX_RESULTS) {
  let q = String(query ?? "").trim();
  let kinds = null;
  if (q && PREFIX_KINDS[q[0]]) {
    kinds = PREFIX_KINDS[q[0]];
    q = q.slice(1).trim();
  }
  const scored = [];
  for (const item of items) {
    if (kinds && !kinds.includes(item.kind)) continue;
    let score = matchScore(q, item.label);
    for (const keyword of item.keywords ?? []) score = Math.max(score, Math.floor(matchScore(q, keyword) / 2));
    if (score > 0) scored.push({ item, score });
  }
  scored.sort(
    (a, b) =>
      b.score - a.score ||
      (b.item.boost ?? 0) - (a.item.boost ?? 0) ||
      (KIND_ORDER[a.item.kind] ?? 9) - (KIND_ORDER[b.item.kind] ?? 9) ||
      String(a.item.label).localeCompare(String(b.item.label)),
  );
  return scored.slice(0, limit).map((s) => s.item);
}

/**
 * What the shell offers to the switcher: every channel the user can see in each server (the
 * provisioning API lists only those), the servers, and the people — members of the user's
 * servers and DM partners, once each — whose action opens the DM (creating it if needed).
 * @param {object} o
 * @param {import("../matrix.js").MatrixClient} o.client
 * @param {string} o.userId
 * @param {Map<string, object>} o.servers  server id → Server
 * @param {string[]} o.order  the rail's order
 * @param {Map<string, object[]>} o.members  server id → [Member], for the servers loaded so far
 * @param {ReturnType<import("./dms.js").createDmView>} o.dms
 * @param {string|null} o.activeServer
 * @param {(sid: string, cid: string) => void} o.jumpToChannel
 * @param {(sid: string) => void} o.selectServer
 */
export function shellItems({ client, userId, servers, order, members, dms, activeServer, jumpToChannel, selectServer }) {
  const items = [];
  for (const sid of order) {
    const server = servers.get(sid);
    if (!server) continue;
    const here = sid === activeServer ? 1 : 0;
    items.push({
      id: sid,
      kind: "server",
      label: server.name,
      detail: "Server",
      boost: here,
      icon: () => avatar(client, { mxc: server.icon, name: server.name, id: sid, size: 24, className: "avatar switcher-avatar" }),
      action: () => selectServer(sid),
    });
    for (const channel of server.channels ?? []) {
      items.push({
        id: channel.channel_id,
        kind: "channel",
        label: channel.name,
        keywords: [`${server.name} ${channel.name}`],
        detail: server.name,
        boost: here,
        icon: () => channelIcon(channel, { size: 18, className: "switcher-icon" }),
        action: () => jumpToChannel(sid, channel.channel_id),
      });
    }
  }
  const people = new Map(); // user id → item
  for (const d of dms.entries()) {
    if (d.userId === userId || people.has(d.userId)) continue;
    people.set(d.userId, {
      id: d.userId,
      kind: "user",
      label: d.name,
      keywords: [d.userId],
      detail: d.invite ? "Wants to talk with you" : "Direct message",
      boost: 2 + (d.unread ? 1 : 0),
      avatar: d.avatar,
      icon: null,
      action: () => dms.openRoom(d.roomId, d.userId),
    });
  }
  for (const sid of order) {
    const server = servers.get(sid);
    for (const member of members.get(sid) ?? []) {
      if (member.user_id === userId) continue;
      const known = people.get(member.user_id);
      if (known) {
        if (known.kind === "user" && !known.servers) known.servers = [];
        known.servers?.push(server?.name);
        continue;
      }
      const name = member.display_name || member.user_id.replace(/^@/, "").split(":")[0];
      people.set(member.user_id, {
        id: member.user_id,
        kind: "user",
        label: name,
        keywords: [member.user_id],
        servers: [server?.name],
        boost: 0,
        avatar: member.avatar,
        icon: null,
        action: () => dms.open(member.user_id),
      });
    }
  }
  for (const person of people.values()) {
    const servers = (person.servers ?? []).filter(Boolean);
    if (!person.detail) person.detail = servers.join(", ");
    person.icon = () => avatar(client, { mxc: person.avatar, name: person.label, id: person.id, size: 24, className: "avatar switcher-avatar" });
    items.push(person);
  }
  return items;
}

let counter = 0;

/**
 * Listen for Ctrl+K / ⌘+K while `root` is in the page.
 * @param {object} options
 * @param {Element} options.root  the shell; the switcher is gone with it
 * @param {() => object[]} options.items  what can be searched: rankItems' items, plus
 *   {detail?: string, icon: () => Element, action: () => void}
 * @param {() => void} [options.onOpen]  load what the search needs (member lists); call refresh() when it arrives
 */
export function installSwitcher({ root, items, onOpen }) {
  const id = `switcher-${++counter}`;
  let dialog = null;
  let input = null;
  let list = null;
  let results = [];
  let selected = 0;

  function onKeydown(event) {
    if (!root.isConnected) {
      document.removeEventListener("keydown", onKeydown);
      return;
    }
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey || event.key.toLowerCase() !== "k") return;
    // Not over another dialog (a confirmation, a settings dialog).
    const other = [...document.querySelectorAll("dialog[open]")].some((d) => d !== dialog);
    if (other) return;
    event.preventDefault();
    if (dialog) close();
    else open();
  }
  document.addEventListener("keydown", onKeydown);

  function open() {
    input = h("input", {
      type: "text",
      class: "switcher-input",
      "data-testid": "switcher-input",
      role: "combobox",
      "aria-expanded": "true",
      "aria-controls": `${id}-list`,
      "aria-autocomplete": "list",
      "aria-label": "Where would you like to go?",
      placeholder: "Where would you like to go?",
      autocomplete: "off",
      spellcheck: "false",
    });
    list = h("ul", { class: "switcher-list", id: `${id}-list`, role: "listbox", "aria-label": "Results", "data-testid": "switcher-results" });
    dialog = h(
      "dialog",
      { class: "dialog switcher", role: "dialog", "aria-modal": "true", "aria-label": "Quick switcher", "data-testid": "switcher" },
      h(
        "div",
        { class: "switcher-body" },
        input,
        list,
        h("p", { class: "switcher-hint muted", text: "↑↓ to choose, Enter to go, Esc to close. Start with # for channels, @ for people, * for servers." }),
      ),
    );
    input.addEventListener("input", () => {
      selected = 0;
      render();
    });
    input.addEventListener("keydown", onInputKey);
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close();
    });
    dialog.addEventListener("mousedown", (event) => {
      if (event.target === dialog) close(); // the backdrop
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    render();
    onOpen?.();
  }

  function close() {
    if (!dialog) return;
    dialog.close();
    dialog.remove();
    dialog = input = list = null;
    results = [];
  }

  function onInputKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (results.length === 0) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      selected = (selected + step + results.length) % results.length;
      highlight();
    } else if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      choose(results[selected]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  }

  function choose(item) {
    if (!item) return;
    close();
    item.action();
  }

  function render() {
    if (!dialog) return;
    results = rankItems(items(), input.value);
    selected = Math.min(selected, Math.max(results.length - 1, 0));
    list.replaceChildren(
      ...results.map((item, i) =>
        h(
          "li",
          {
            id: `${id}-option-${i}`,
            class: "switcher-option",
            role: "option",
            "aria-selected": "false",
            "data-testid": "switcher-option",
            "data-kind": item.kind,
            "data-id": item.id,
            onmousemove: () => {
              if (selected !== i) {
                selected = i;
                highlight();
              }
            },
            onclick: () => choose(item),
          },
          item.icon(),
          h("span", { class: "switcher-label", "data-testid": "switcher-label", text: item.label }),
          item.detail ? h("span", { class: "switcher-detail muted", text: item.detail }) : null,
        ),
      ),
    );
    if (results.length === 0) {
      list.append(h("li", { class: "switcher-empty muted", role: "presentation", "data-testid": "switcher-empty", text: "Nothing matches." }));
    }
    highlight();
  }

  function highlight() {
    const options = list.querySelectorAll("[role=option]");
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === selected)));
    const current = options[selected];
    if (current) {
      input.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  return {
    open,
    close,
    /** Search again (new data arrived), keeping what is typed. */
    refresh: () => render(),
    get isOpen() {
      return dialog !== null;
    },
  };
}
