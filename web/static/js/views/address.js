// The address: what is open is written in it (deep links, reload), Back and Forward open what it
// names (routes.js), and the address the page opened with is opened once the servers are known.
// What a link names but cannot be opened is said in a notice, and the address corrected.

import { h } from "../dom.js";
import { HOME, formatRoute, parseRoute } from "../routes.js";
import { SELECTION_KEYS, pickChannel } from "../store.js";

const NOT_A_MEMBER = "That link is to a server you are not a member of, or one that no longer exists.";

/**
 * @param {object} options
 * @param {import("../store.js").ShellStore} options.store
 * @param {HTMLElement} options.shell  while it is on the page, Back and Forward are followed
 * @param {(serverId: string|null, eventId?: string|null, threadId?: string|null) => void} options.selectServer
 * @param {(roomId: string, target: {threadId: string|null, eventId: string|null}) => void} options.follow
 *   open a thread and/or mark a message in the chat open, if it is that room's
 */
export function createAddress({ store, shell, selectServer, follow }) {
  // Why a link did not open what it named (a channel one cannot see); gone on the next move.
  const notice = h("p", { class: "banner", role: "status", "data-testid": "route-notice" });
  notice.hidden = true;

  let firstSelectionDone = false;
  // The address opened with (routes.js): a deep link `#/server/<id>/channel/<id>`, or
  // `#server=<id>` where the invite landing page sends people after they join. It may name a
  // server the bridge has not seen the join of yet: kept until a refresh lists it.
  const arrivedFromInvite = location.hash.startsWith("#server=");
  let requestedRoute = parseRoute(location.hash);
  if (requestedRoute && !requestedRoute.serverId) requestedRoute = null;
  let requestedServer = requestedRoute?.serverId ?? null;
  let replaceAddress = true; // the next address written replaces the entry (not a move of the person)

  /** Put what is open in the address: a new history entry for a move, else the same one. */
  function write() {
    if (!firstSelectionDone) return; // the address still names what is yet to be opened
    const { activeServer, activeChannel, linkedEvent, linkedThread } = store.state;
    const channelId = activeServer ? activeChannel : null;
    const hash = formatRoute({ serverId: activeServer, channelId, eventId: linkedEvent, threadId: channelId ? linkedThread : null });
    const replace = replaceAddress;
    replaceAddress = false;
    if (hash === location.hash) return;
    // A move of the person's own ends what a link's notice said; correcting a link keeps it.
    if (!replace) notice.hidden = true;
    const url = location.pathname + location.search + hash;
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }

  /**
   * Open what an address names; what cannot be opened is said, and the server's default
   * channel (or the first server) opened instead. The address is then corrected in place.
   */
  function open(route) {
    replaceAddress = true;
    notice.hidden = true;
    const { servers, activeServer, order } = store.state;
    if (!route.serverId) {
      if (activeServer) selectServer(null);
      else write();
      return;
    }
    const server = servers.get(route.serverId);
    if (!server) {
      showNotice(NOT_A_MEMBER);
      selectServer(activeServer ?? order[0] ?? null);
      return;
    }
    const visible = (server.channels ?? []).some((c) => c.channel_id === route.channelId);
    if (route.channelId && !visible) {
      store.forgetChannel(server.server_id);
      const fallback = server.channels?.find((c) => c.channel_id === pickChannel(store.state, server));
      showNotice(
        `That link is to a channel of ${server.name} that does not exist or that you cannot see` +
          (fallback ? `: here is #${fallback.name}.` : "."),
      );
    } else if (route.channelId) {
      store.rememberChannel(server.server_id, route.channelId);
    }
    const eventId = visible ? route.eventId : null;
    const threadId = visible ? route.threadId : null;
    selectServer(server.server_id, eventId, threadId);
    follow(route.channelId, { threadId, eventId });
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  function onPopState() {
    if (!shell.isConnected) {
      window.removeEventListener("popstate", onPopState);
      return;
    }
    if (!firstSelectionDone) return;
    open(parseRoute(location.hash) ?? HOME);
  }
  window.addEventListener("popstate", onPopState);

  store.subscribe(write, [...SELECTION_KEYS, "linkedThread"]);
  return {
    notice,
    /**
     * The person chose what to open (Home, or a server in the rail). Before the server list
     * first loaded, that choice stands: the first server is not opened over it, nor the
     * address the page opened with.
     */
    chosen() {
      if (firstSelectionDone) return;
      firstSelectionDone = true;
      requestedServer = null;
      requestedRoute = null;
    },
    /** Open this server once a refresh lists it (one just joined). */
    request(sid) {
      requestedServer = sid;
    },
    /**
     * The server list was loaded: open what the address asked for, or the first server the
     * first time. Returns whether it opened something (else the shell draws what is open).
     */
    afterLoad() {
      const { servers, activeServer, order } = store.state;
      if (requestedServer && servers.has(requestedServer)) {
        // A deep link, or arrived from an invite landing page: open the server (and channel).
        const route = requestedRoute ?? { serverId: requestedServer, channelId: null, eventId: null };
        requestedServer = null;
        requestedRoute = null;
        firstSelectionDone = true;
        open(route);
        return true;
      }
      if (activeServer === null && !firstSelectionDone && order.length) {
        firstSelectionDone = true;
        // A link to a server not listed opens it later if a refresh lists it; an invite's join
        // the bridge has not seen yet is no news to the person, any other link is.
        if (requestedRoute && !arrivedFromInvite) showNotice(NOT_A_MEMBER);
        replaceAddress = true;
        selectServer(order[0]);
        return true;
      }
      if (!firstSelectionDone) replaceAddress = true;
      firstSelectionDone = true;
      return false;
    },
  };
}
