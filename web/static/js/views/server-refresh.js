// The servers from the provisioning API, kept current: the list at start, a server again
// whenever the Guilds state of one of its rooms changes in the sync (renames, new channels and
// roles appear without a reload), its members when shown, and a server left gone at once.

import { MatrixError } from "../matrix.js";
import { isAuthError } from "../sync.js";
import { pickChannel, serverOfRoom } from "../store.js";

const REFRESH_DEBOUNCE_MS = 250;
// State in a server's rooms that the provisioning API's Server or member list reflects.
const SERVER_STATE = /^(chat\.guilds\.|m\.room\.(name|topic|avatar|power_levels|join_rules)$|m\.space\.)/;

/**
 * @param {object} options
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {import("../store.js").ShellStore} options.store
 * @param {{afterLoad: () => boolean}} options.address  opens what the address asks for (views/address.js)
 * @param {(message: string) => void} options.showBanner
 * @param {(notice?: string) => void} options.onSignedOut
 */
export function createServerRefresh({ api, sync, store, address, showBanner, onSignedOut }) {
  const timers = new Map();
  // Refreshes of the list started so far: an answer overtaken by a later refresh's is dropped
  // (a list read before a join, arriving after the one read after it, would hide the server).
  let listRefreshes = 0;
  // Servers whose space this client's sync has shown it in: only those can be left.
  const seenInSync = new Set();

  async function refreshServers() {
    const attempt = ++listRefreshes;
    try {
      const list = await api.listServers();
      const loaded = await Promise.all(
        list.map((summary) => api.getServer(summary.server_id).catch(() => null)),
      );
      if (attempt !== listRefreshes) return;
      // Drawn once, with what the address asks for opened.
      store.batch(() => {
        store.setServers(loaded.filter(Boolean));
        showBanner("");
        if (address.afterLoad()) return;
        const server = store.activeServer();
        if (server && !server.channels.some((c) => c.channel_id === store.state.activeChannel)) {
          store.update({ activeChannel: pickChannel(store.state, server) });
        }
      });
    } catch (error) {
      if (isAuthError(error)) {
        onSignedOut("Your session has ended. Sign in again.");
        return;
      }
      console.warn("servers failed to load", error);
      if (!store.state.loaded) store.changed(["servers"]);
    }
  }

  async function refreshServer(sid) {
    try {
      store.putServer(await api.getServer(sid));
      if (sid === store.state.activeServer) loadMembers(sid);
    } catch (error) {
      if (error instanceof MatrixError && (error.status === 404 || error.status === 403)) {
        store.removeServer(sid);
        return;
      }
      console.warn("server failed to refresh", error);
    }
  }

  async function loadMembers(sid) {
    try {
      store.setMembers(sid, await api.allMembers(sid));
    } catch (error) {
      console.warn("members failed to load", error);
    }
  }

  /** Refresh a server ("*": the list) once its changes have settled. */
  function schedule(sid) {
    clearTimeout(timers.get(sid));
    timers.set(
      sid,
      setTimeout(() => {
        timers.delete(sid);
        if (sid === "*") refreshServers();
        else refreshServer(sid);
      }, REFRESH_DEBOUNCE_MS),
    );
  }

  /** A sync update: refresh what its state changes touched; drop the servers left. */
  function onSync({ state, membership }) {
    const { servers, loaded } = store.state;
    let all = membership && loaded;
    for (const [roomId, types] of state) {
      const sid = serverOfRoom(store.state, roomId);
      const relevant = [...types].some((t) => SERVER_STATE.test(t));
      const isSpace = sid === roomId;
      const roleRoom = sync.room(roomId)?.isRoleRoom === true;
      if (relevant || ((isSpace || roleRoom) && types.has("m.room.member"))) {
        if (sid) schedule(sid);
        else all = true;
      }
      if (isSpace && types.has("m.room.member") && sid === store.state.activeServer) loadMembers(sid);
    }
    // A server we left (kicked, banned, deleted) disappears at once. One just joined may be
    // listed before this client's sync has its space: it was never in it here, so it stays.
    for (const sid of [...servers.keys()]) {
      if (sync.rooms.has(sid)) seenInSync.add(sid);
      else if (store.state.loaded && seenInSync.has(sid) && sync.status === "online" && membership) {
        seenInSync.delete(sid);
        store.removeServer(sid);
      }
    }
    if (all) schedule("*");
  }

  return { refreshServers, refreshServer, loadMembers, onSync };
}
