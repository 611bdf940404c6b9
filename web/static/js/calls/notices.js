// The small system lines 1:1 calls leave in a conversation's timeline: "Call ended · 1:05",
// "Missed video call from Alice", "Bob declined the call", "Voice call could not connect". Computed from the call events in the
// room (any client's, so calls placed from Element show too); the signalling events themselves
// (candidates, answers, negotiation) never show.

/** Event types that may stand for a notice in the timeline. */
export const CALL_NOTICE_TYPES = new Set(["m.call.invite", "m.call.hangup", "m.call.reject"]);

function callEvents(room, callId) {
  return room.timeline.filter((e) => e.type?.startsWith("m.call.") && e.content?.call_id === callId);
}

function kindOf(invite) {
  return /^m=video [1-9]/m.test(invite?.content?.offer?.sdp ?? "") ? "video" : "voice";
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Whether an unanswered call was dropped for another one in glare (both called at once). */
function mergedInGlare(room, invite) {
  const lifetime = Number(invite.content?.lifetime) || 60_000;
  return room.timeline.some(
    (e) =>
      e.type === "m.call.invite" &&
      e.sender !== invite.sender &&
      e.content?.call_id !== invite.content?.call_id &&
      Math.abs((e.origin_server_ts ?? 0) - (invite.origin_server_ts ?? 0)) < lifetime &&
      room.timeline.some(
        (a) => a.type === "m.call.answer" && a.content?.call_id === e.content?.call_id && a.sender !== e.sender,
      ),
  );
}

function unansweredText(room, invite, userId) {
  const kind = kindOf(invite);
  if (invite.sender === userId) {
    const other = invite.content?.invitee;
    return typeof other === "string" ? `${room.displayName(other)} did not answer your ${kind} call` : `Your ${kind} call was not answered`;
  }
  return `Missed ${kind} call from ${room.displayName(invite.sender)}`;
}

/**
 * The notice text for one timeline event, or null when it shows nothing.
 * @param {import("../sync.js").Room} room
 * @param {object} event
 * @param {string} userId  the signed-in user
 */
export function callNotice(room, event, userId, now = Date.now()) {
  const callId = event.content?.call_id;
  if (!CALL_NOTICE_TYPES.has(event.type) || typeof callId !== "string") return null;
  const events = callEvents(room, callId);
  const invite = events.find((e) => e.type === "m.call.invite");
  const answer = events.find((e) => e.type === "m.call.answer" && (!invite || e.sender !== invite.sender));
  if (event.type === "m.call.reject") {
    // Only the first end of a call speaks.
    if (events.find((e) => e.type === "m.call.reject" || e.type === "m.call.hangup") !== event) return null;
    return event.sender === userId ? "You declined the call" : `${room.displayName(event.sender)} declined the call`;
  }
  if (event.type === "m.call.hangup") {
    if (events.find((e) => e.type === "m.call.reject" || e.type === "m.call.hangup") !== event) return null;
    if (answer) {
      const kind = kindOf(invite) === "video" ? "Video" : "Voice";
      // Answered, but no connection was ever made (the spec's reason): no time was spent in it.
      if (event.content?.reason === "ice_failed") return `${kind} call could not connect`;
      return `${kind} call ended · ${duration((event.origin_server_ts ?? 0) - (answer.origin_server_ts ?? 0))}`;
    }
    if (!invite || mergedInGlare(room, invite)) return null;
    return unansweredText(room, invite, userId);
  }
  // An invite speaks only when nothing else of its call will: it ran out unanswered, unended
  // (the caller's client went away without hanging up).
  if (events.some((e) => e !== event && ["m.call.answer", "m.call.hangup", "m.call.reject"].includes(e.type))) return null;
  // (By the local clock: a notice a few seconds early or late harms nobody.)
  const lifetime = Number(event.content?.lifetime) || 60_000;
  if (now - (event.origin_server_ts ?? now) < lifetime) return null;
  if (mergedInGlare(room, event)) return null;
  return unansweredText(room, event, userId);
}
