// Joining a channel the member is not in yet, without racing Guilds: when the bot's auto-join
// invite is pending, the Synapse module is about to join the member itself, and a second join of
// the same user at the same moment on another Synapse worker would fork the room.

// The flag of the bot's auto-join invites (guilds/layout.py AUTO_JOIN_KEY).
export const AUTO_JOIN_KEY = "chat.guilds.auto_join";
// How long to wait for Guilds' join before joining anyway (the module may have refused it).
export const AUTO_JOIN_WAIT_MS = 10_000;

/** Whether the user holds an auto-join invite from Guilds to this room (in the sync's invites). */
export function autoJoinPending(sync, roomId, userId) {
  const events = sync.invites?.get(roomId) ?? [];
  return events.some(
    (e) => e?.type === "m.room.member" && e.state_key === userId && e.content?.membership === "invite" && e.content?.[AUTO_JOIN_KEY] === true,
  );
}

/**
 * When Guilds is joining the user to the room, wait (a bounded time) for that join to show in
 * the sync; resolves true once the room is joined, false when the caller should join itself.
 */
export function awaitAutoJoin(sync, roomId, userId, timeoutMs = AUTO_JOIN_WAIT_MS) {
  if (sync.room(roomId)) return Promise.resolve(true);
  if (!autoJoinPending(sync, roomId, userId)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = () => {
      sync.removeEventListener("update", check);
      clearTimeout(timer);
      resolve(Boolean(sync.room(roomId)));
    };
    const check = () => {
      if (sync.room(roomId)) done();
    };
    const timer = setTimeout(done, timeoutMs);
    sync.addEventListener("update", check);
  });
}
