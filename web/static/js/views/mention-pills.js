// Mentions drawn as pills in a message already made safe (markdown.js): a matrix.to link to a
// user becomes "@Name" (the member's current name, as Element and Cinny show it), "@Role" of a
// role the message mentions takes the role's colour, and "@room" is marked when the message
// notifies the room. Only text and elements we make go in; nothing is parsed as HTML here.

import { h } from "../dom.js";
import { ROLE_MENTIONS, ROOM_MENTION, userIdFromLink } from "../mentions.js";

/**
 * @param {DocumentFragment | HTMLElement} root  the message body, sanitised
 * @param {object} content  the message content shown
 * @param {{me: string, nameOf: (userId: string) => string,
 *   roleOf: (roleId: string) => ({name: string, color?: string|null} | null)}} context
 */
export function drawMentionPills(root, content, { me, nameOf, roleOf }) {
  for (const link of [...root.querySelectorAll("a[href]")]) {
    const userId = userIdFromLink(link.getAttribute("href"));
    if (!userId) continue;
    link.replaceWith(pill(`@${nameOf(userId)}`, { user: userId, mine: userId === me }));
  }
  const words = new Map(); // "@text" → pill options
  const roleIds = Array.isArray(content?.[ROLE_MENTIONS]) ? content[ROLE_MENTIONS] : [];
  for (const roleId of roleIds) {
    const role = typeof roleId === "string" ? roleOf(roleId) : null;
    if (role) words.set(`@${role.name}`, { role: roleId, color: role.color ?? null });
  }
  if (content?.["m.mentions"]?.room === true) words.set(ROOM_MENTION, { room: true });
  if (words.size) wrapWords(root, words);
}

function pill(text, { user = null, role = null, color = null, room = false, mine = false }) {
  const el = h("span", {
    class: `mention${mine ? " me" : ""}${role ? " role" : ""}`,
    "data-testid": "mention-pill",
    "data-user-id": user,
    "data-role-id": role,
    "data-room": room ? "true" : null,
    text,
  });
  if (color && /^#[0-9a-f]{6}$/i.test(color)) el.style.setProperty("--pill", color);
  return el;
}

function wrapWords(root, words) {
  const texts = [...words.keys()].sort((a, b) => b.length - a.length);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  /** @type {Text[]} */
  const nodes = [];
  for (let n = /** @type {Text | null} */ (walker.nextNode()); n; n = /** @type {Text | null} */ (walker.nextNode())) {
    if (!n.parentElement?.closest("code, pre, .mention")) nodes.push(n);
  }
  for (const node of nodes) {
    const value = node.nodeValue ?? "";
    const parts = [];
    let last = 0;
    for (let i = 0; i < value.length; ) {
      const found = texts.find((t) => value.startsWith(t, i));
      if (!found) {
        i++;
        continue;
      }
      if (i > last) parts.push(document.createTextNode(value.slice(last, i)));
      parts.push(pill(found, words.get(found)));
      i += found.length;
      last = i;
    }
    if (parts.length === 0) continue;
    if (last < value.length) parts.push(document.createTextNode(value.slice(last)));
    node.replaceWith(...parts);
  }
}
