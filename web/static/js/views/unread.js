// Unread and mention counts as the rail and the sidebar show them: a muted room counts nothing.

/**
 * @param {object} options
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {{isMuted: (roomId: string) => boolean}} options.notify
 * @param {import("../store.js").ShellStore} options.store
 */
export function createUnread({ sync, notify, store }) {
  /** A room's counts; a muted room shows nothing, even what was counted before it was muted. */
  function of(roomId) {
    if (notify.isMuted(roomId)) return { notifications: 0, highlights: 0 };
    return sync.room(roomId)?.unread ?? { notifications: 0, highlights: 0 };
  }

  /** A server's counts: its channels' together, but for the channel being read. */
  function ofServer(server) {
    let notifications = 0;
    let highlights = 0;
    for (const channel of server.channels ?? []) {
      if (channel.channel_id === store.state.activeChannel && document.hasFocus()) continue;
      const u = of(channel.channel_id);
      notifications += u.notifications;
      highlights += u.highlights;
    }
    return { notifications, highlights };
  }

  return { of, ofServer };
}
