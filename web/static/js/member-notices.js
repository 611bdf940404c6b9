// What a membership event says to people: the small system lines in a channel ("Alice joined",
// "Bob was kicked: spam") and the message a removed member sees ("You were removed from Friends:
// spam"). Pure functions of `m.room.member` events, any client's; the strings they return are
// inserted as text by the views, never as HTML.

export const MEMBER_EVENT = "m.room.member";

/** The name a membership event shows for its user: this event's, the one before, or the localpart. */
export function memberName(event) {
  for (const content of [event.content, event.unsigned?.prev_content]) {
    const name = content?.displayname;
    if (typeof name === "string" && name.trim()) return name;
  }
  return String(event.state_key ?? "").replace(/^@/, "").split(":")[0] || "Someone";
}

function withReason(text, reason) {
  return typeof reason === "string" && reason.trim() ? `${text}: ${reason.trim()}` : `${text}.`;
}

/**
 * The channel's system line for a membership event, or null when it says nothing worth a line
 * (a new display name or avatar, an invite, an invite withdrawn or declined).
 */
export function memberNotice(event) {
  if (event?.type !== MEMBER_EVENT || typeof event.state_key !== "string") return null;
  const now = event.content?.membership;
  const before = event.unsigned?.prev_content?.membership ?? "leave";
  const name = memberName(event);
  const self = event.sender === event.state_key;
  if (now === "join") return before === "join" ? null : `${name} joined.`;
  if (now === "ban") return withReason(`${name} was banned`, event.content?.reason);
  if (now === "leave") {
    if (before === "ban") return `${name} was unbanned.`;
    if (before !== "join") return null;
    return self ? `${name} left.` : withReason(`${name} was kicked`, event.content?.reason);
  }
  return null;
}

/**
 * What to tell `userId` when this event took them out of a server (kicked or banned by someone
 * else), or null when it did not (they left themselves, or it is someone else's event).
 */
export function removalNotice(event, userId, serverName) {
  if (event?.type !== MEMBER_EVENT || event.state_key !== userId || event.sender === userId) return null;
  const membership = event.content?.membership;
  if (membership !== "leave" && membership !== "ban") return null;
  if ((event.unsigned?.prev_content?.membership ?? "join") !== "join") return null;
  const server = serverName || "the server";
  const verb = membership === "ban" ? "banned" : "removed";
  return withReason(`You were ${verb} from ${server}`, event.content?.reason);
}

/** The user's own membership event in a `/sync` room section: the timeline's last, else the state's. */
export function ownMembershipEvent(section, userId) {
  const mine = (e) => e?.type === MEMBER_EVENT && e.state_key === userId;
  for (const events of [section?.timeline?.events, section?.state?.events]) {
    const list = events ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (mine(list[i])) return list[i];
  }
  return null;
}
