// Mentions as Matrix carries them (spec v1.7, "intentional mentions"): what a message we send
// says in `m.mentions` and its `formatted_body` pills, and whether a message we receive mentions
// us. Pure logic, no DOM: views/mention-pills.js draws pills, views/mention-autocomplete.js picks.
//
// - A member: `m.mentions.user_ids` names them, and the HTML links their id on matrix.to, which
//   Element, Cinny and nheko draw as a pill with the member's current name.
// - A role (Guilds only; Matrix has none): its holders are listed in `m.mentions.user_ids`, so
//   every client's `.m.rule.is_user_mention` push rule notifies exactly them, and the role ids go
//   in `chat.guilds.role_mentions` for Guilds to draw "@Role" as a coloured pill. Other clients
//   see the text "@Role". A role with more than MAX_ROLE_HOLDERS holders cannot be mentioned:
//   the list would not fit an event (64 KiB), and @room is the way to reach that many.
// - Everyone (@room): `m.mentions.room`, for those whose power reaches the room's
//   `notifications.room` level (the module refuses it from anyone else).
//
// Every message we send carries `m.mentions`, even empty: a client that reads it stops guessing
// from the body (a name that happens to appear in a sentence is no mention).

import { HTML_FORMAT, hasFormatting, parseMarkdown, toHtml } from "./markdown.js";

export const MATRIX_TO = "https://matrix.to/#/";
export const ROLE_MENTIONS = "chat.guilds.role_mentions";
export const ROOM_MENTION = "@room";
export const MAX_ROLE_HOLDERS = 500;

// A Matrix user id as typed in text: @localpart:server (historical localparts allowed).
const USER_ID_IN_TEXT = /@[!-9;-~]+:[A-Za-z0-9.-]+(?::\d{1,5})?/g;
const WORD_CHAR = /[\p{L}\p{N}_]/u;

/** The matrix.to link of a user, as every client's pills expect it. */
export function userLink(userId) {
  return MATRIX_TO + userId;
}

/** The user id a matrix.to link names, or null when it names anything else. */
export function userIdFromLink(href) {
  if (typeof href !== "string" || !href.startsWith(MATRIX_TO)) return null;
  let entity = href.slice(MATRIX_TO.length).split(/[/?]/)[0];
  try {
    entity = decodeURIComponent(entity);
  } catch {
    return null;
  }
  return /^@[^:\s]+:\S+$/.test(entity) ? entity : null;
}

/**
 * The power a user has in a room, from its state (a `Room` of sync.js or anything with
 * `getState`): room version 12's creators have unlimited power.
 */
export function powerOf(room, userId) {
  const create = room.getState("m.room.create");
  const version = Number(create?.content?.room_version ?? "1");
  if (Number.isFinite(version) && version >= 12 && create) {
    const creators = [create.sender, ...(create.content?.additional_creators ?? [])];
    if (creators.includes(userId)) return Infinity;
  }
  const levels = room.getState("m.room.power_levels")?.content;
  if (!levels) return create?.sender === userId ? 100 : 0;
  const user = levels.users?.[userId];
  return Number(user ?? levels.users_default ?? 0);
}

/** Whether the user may notify everyone in the room (@room): `notifications.room`, 50 unset. */
export function mayMentionRoom(room, userId) {
  const levels = room.getState("m.room.power_levels")?.content;
  const needed = Number(levels?.notifications?.room ?? 50);
  return powerOf(room, userId) >= needed;
}

/**
 * Whether a message mentions `userId`, as the spec's push rules decide it: with `m.mentions`,
 * only what it lists (and @room from a sender allowed to); without it (older clients), the
 * legacy rules: the user's display name or localpart in the body, or "@room".
 * @param {{sender: string, content?: object}} event
 * @param {{userId: string, displayName?: string|null, senderMayMentionRoom?: boolean}} me
 */
export function mentionsUser(event, { userId, displayName = null, senderMayMentionRoom = false }) {
  if (event.sender === userId) return false;
  const content = event.content ?? {};
  const mentions = content["m.mentions"];
  if (mentions && typeof mentions === "object") {
    if (Array.isArray(mentions.user_ids) && mentions.user_ids.includes(userId)) return true;
    return mentions.room === true && senderMayMentionRoom;
  }
  const body = typeof content.body === "string" ? content.body : "";
  if (!body) return false;
  if (senderMayMentionRoom && body.includes(ROOM_MENTION)) return true;
  const localpart = userId.replace(/^@/, "").split(":")[0];
  return [displayName, localpart, userId].some((word) => word && containsWord(body, word));
}

/**
 * Whether a message of `room`, as last edited, mentions the signed-in user (highlighted in the
 * channel and in a thread, as in Discord).
 */
export function mentionsReader(room, event, userId) {
  const content = room.latestEdit(event)?.content?.["m.new_content"] ?? event.content ?? {};
  return mentionsUser(
    { sender: event.sender, content },
    { userId, displayName: room.displayName(userId), senderMayMentionRoom: mayMentionRoom(room, event.sender) },
  );
}

/** Whether `word` appears in `text` on its own (not inside a longer word), case-insensitively. */
export function containsWord(text, word) {
  const lower = text.toLowerCase();
  const needle = word.toLowerCase();
  for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, at + 1)) {
    if (standsAlone(lower, at, needle.length)) return true;
  }
  return false;
}

function standsAlone(text, at, length) {
  const before = at > 0 ? text[at - 1] : "";
  const after = text[at + length] ?? "";
  return !(before && WORD_CHAR.test(before)) && !(after && WORD_CHAR.test(after));
}

/**
 * A mention picked in the composer: the text it put there and what it names.
 * @typedef {{kind: "user", text: string, userId: string}
 *   | {kind: "role", text: string, roleId: string, holders: string[]}
 *   | {kind: "room", text: string}} Pick
 */

/**
 * The content of a message typed as `text`, with the mentions picked while typing it (those
 * whose text is no longer there are dropped), user ids typed in full of `knownUsers`, and
 * `replyTo`, the sender of the message replied to (the spec mentions them in a reply).
 * @param {string} text
 * @param {{picks?: Pick[], knownUsers?: Set<string>, sender?: string, mayMentionRoom?: boolean,
 *   msgtype?: string, replyTo?: string|null}} [options]
 */
export function mentionContent(text, { picks = [], knownUsers = new Set(), sender = "", mayMentionRoom = false, msgtype = "m.text", replyTo = null } = {}) {
  const userIds = new Set(replyTo ? [replyTo] : []);
  const roleIds = [];
  let room = false;
  const links = new Map(); // text → user id, for the pills
  for (const pick of picks) {
    if (!pick.text || !containsWord(text, pick.text)) continue;
    if (pick.kind === "user") {
      userIds.add(pick.userId);
      links.set(pick.text, pick.userId);
    } else if (pick.kind === "role" && pick.holders.length <= MAX_ROLE_HOLDERS) {
      for (const holder of pick.holders) userIds.add(holder);
      if (!roleIds.includes(pick.roleId)) roleIds.push(pick.roleId);
    }
  }
  for (const match of text.matchAll(USER_ID_IN_TEXT)) {
    if (knownUsers.has(match[0])) {
      userIds.add(match[0]);
      links.set(match[0], match[0]);
    }
  }
  if (mayMentionRoom && containsWord(text, ROOM_MENTION)) room = true;
  userIds.delete(sender); // one's own message never notifies oneself

  const tree = withUserLinks(parseMarkdown(text), links);
  /** @type {Record<string, any>} */
  const content = { msgtype, body: text };
  if (hasFormatting(tree)) {
    content.format = HTML_FORMAT;
    content.formatted_body = toHtml(tree);
  }
  /** @type {{user_ids?: string[], room?: boolean}} */
  const mentions = {};
  if (userIds.size) mentions.user_ids = [...userIds].sort();
  if (room) mentions.room = true;
  content["m.mentions"] = mentions;
  if (roleIds.length) content[ROLE_MENTIONS] = roleIds;
  return content;
}

/**
 * The markdown tree with each occurrence of a mention's text (outside code and links) made a
 * link to the user on matrix.to: what other clients draw as a pill.
 * @param {any[]} nodes
 * @param {Map<string, string>} links  text → user id
 */
export function withUserLinks(nodes, links) {
  if (links.size === 0) return nodes;
  // Longest first, so "@Al" never takes the start of "@Alice".
  const texts = [...links.keys()].sort((a, b) => b.length - a.length);
  return nodes.flatMap((node) => {
    if (node.type === "text") return splitText(node.text, texts, links);
    if (Array.isArray(node.children) && node.type !== "link") {
      return [{ ...node, children: withUserLinks(node.children, links) }];
    }
    return [node];
  });
}

function splitText(text, texts, links) {
  const out = [];
  let buffer = "";
  let i = 0;
  while (i < text.length) {
    const found = texts.find((t) => text.startsWith(t, i) && standsAlone(text, i, t.length));
    if (found) {
      if (buffer) out.push({ type: "text", text: buffer });
      buffer = "";
      out.push({ type: "link", href: userLink(links.get(found)), children: [{ type: "text", text: found }] });
      i += found.length;
    } else {
      buffer += text[i];
      i++;
    }
  }
  if (buffer) out.push({ type: "text", text: buffer });
  return out;
}

/**
 * What the composer's `@` before the cursor is typing: {start, query} when the cursor ends an
 * `@word` that starts a line or follows a space, else null.
 * @param {string} value
 * @param {number} cursor
 */
export function mentionQuery(value, cursor) {
  const before = value.slice(0, cursor);
  const match = /(^|\s)@([^\s@]{0,32})$/u.exec(before);
  if (!match) return null;
  return { start: cursor - match[2].length - 1, query: match[2] };
}

/**
 * Candidates for a query, best first: members (by display name or user id), roles, @room.
 * @param {string} query
 * @param {{members: Array<{userId: string, name: string}>, roles: Array<{roleId: string, name: string, color?: string|null, holders: string[]}>, mayMentionRoom: boolean, limit?: number}} sources
 */
export function mentionCandidates(query, { members, roles, mayMentionRoom, limit = 10 }) {
  const q = query.toLowerCase();
  const rank = (...fields) => {
    let best = Infinity;
    for (const field of fields) {
      const f = field.toLowerCase();
      if (f.startsWith(q)) best = Math.min(best, 0);
      else if (f.split(/[\s._-]/).some((part) => part.startsWith(q))) best = Math.min(best, 1);
      else if (f.includes(q)) best = Math.min(best, 2);
    }
    return best;
  };
  const out = [];
  for (const member of members) {
    const score = rank(member.name, member.userId.slice(1));
    if (score < Infinity) out.push({ score, kind: "user", label: member.name, detail: member.userId, userId: member.userId });
  }
  for (const role of roles) {
    if (role.holders.length === 0 || role.holders.length > MAX_ROLE_HOLDERS) continue;
    const score = rank(role.name);
    if (score < Infinity) out.push({ score: score + 0.5, kind: "role", label: role.name, detail: `${role.holders.length} ${role.holders.length === 1 ? "member" : "members"}`, roleId: role.roleId, color: role.color ?? null, holders: role.holders });
  }
  if (mayMentionRoom && rank("room", "everyone", "here") < Infinity) {
    out.push({ score: q ? 0.2 : 3, kind: "room", label: "room", detail: "Notify everyone in this channel" });
  }
  out.sort((a, b) => a.score - b.score || a.label.localeCompare(b.label));
  return out.slice(0, limit);
}

/** The text a candidate puts in the composer (followed by a space) and the pick it records. */
export function pickOf(candidate) {
  if (candidate.kind === "room") return /** @type {Pick} */ ({ kind: "room", text: ROOM_MENTION });
  const text = `@${candidate.label}`;
  if (candidate.kind === "role") return /** @type {Pick} */ ({ kind: "role", text, roleId: candidate.roleId, holders: candidate.holders });
  return /** @type {Pick} */ ({ kind: "user", text, userId: candidate.userId });
}
