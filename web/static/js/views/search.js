// The header's search box, as in Discord: messages of the open channel or of the whole server
// (the channels of it this user is in), found by the homeserver's `/search`, newest first, the
// matched words marked, more on demand; a result opens its message in its channel. In a direct
// conversation (views/dms.js), the same box searches that conversation.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { MAX_QUERY_LENGTH, highlightTerms, normalizeQuery, readSearchAnswer, searchRequest } from "../search.js";
import { createHeaderPanel } from "./header-panel.js";
import { openMessage, revealMessage } from "./jump.js";
import { messageSummary } from "./message-summary.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {() => import("./channel-tools.js").Place | null} options.current  the open server and
 *   channel, or DM
 * @param {(serverId: string, userId: string) => string|null} options.roleColor
 */
export function createSearchBox({ client, sync, current, roleColor }) {
  const input = h("input", {
    type: "text",
    class: "search-input",
    "data-testid": "search-input",
    placeholder: "Search",
    "aria-label": "Search messages",
    maxlength: String(MAX_QUERY_LENGTH),
    autocomplete: "off",
  });
  const channelOption = h("option", { value: "channel", text: "This channel" });
  const serverOption = h("option", { value: "server", text: "Whole server" });
  const scope = h("select", { class: "search-scope", "data-testid": "search-scope", "aria-label": "Where to search" }, channelOption, serverOption);
  const form = h(
    "form",
    {
      class: "search-box",
      role: "search",
      "data-testid": "search-form",
      onsubmit: (event) => {
        event.preventDefault();
        start();
      },
    },
    icon("search", { size: 16, className: "search-icon" }),
    input,
    scope,
  );
  // A tap anywhere on the box (its icon on a phone) is a tap on the field.
  form.addEventListener("click", (event) => {
    if (event.target !== scope) input.focus();
  });
  scope.addEventListener("change", () => {
    if (normalizeQuery(input.value)) start();
  });

  const status = h("p", { class: "header-panel-status muted", "data-testid": "search-status", role: "status" });
  const list = h("ol", { class: "summaries", "data-testid": "search-results" });
  const more = h("button", { type: "button", class: "button wide", "data-testid": "search-more", text: "More results", onclick: () => loadMore() });
  more.hidden = true;
  const panel = createHeaderPanel({ testid: "search-panel", title: "Search" });
  panel.body.append(status, list, more);

  /** The search shown: what was asked, where, and the batch to page on from. */
  let search = null;

  function start() {
    const here = current();
    const term = normalizeQuery(input.value);
    if (!(here?.server || here?.dm) || !term) return;
    const serverWide = !here.dm && (scope.value === "server" || !here.channel);
    const channels = (here.server?.channels ?? []).filter((c) => sync.room(c.channel_id));
    const roomIds = serverWide ? channels.map((c) => c.channel_id) : [here.channel.channel_id];
    search = {
      term,
      key: placeKey(here),
      server: here.server,
      dm: here.dm ?? null,
      names: new Map((here.server?.channels ?? []).map((c) => [c.channel_id, c.name])),
      body: searchRequest({ term, roomIds }),
      nextBatch: null,
      terms: highlightTerms(term),
      shown: new Set(),
    };
    panel.setTitle(here.dm ? `Search with ${here.channel.name}` : serverWide ? `Search in ${here.server.name}` : `Search in #${here.channel.name}`);
    list.replaceChildren();
    more.hidden = true;
    panel.open();
    if (roomIds.length === 0) {
      say("You are in no channel of this server to search.");
      return;
    }
    say("Searching…");
    fetchPage(search);
  }

  function loadMore() {
    if (search?.nextBatch) fetchPage(search);
  }

  async function fetchPage(asked) {
    more.disabled = true;
    try {
      const answer = readSearchAnswer(await client.search(asked.body, asked.nextBatch));
      if (asked !== search) return; // a newer search replaced this one
      asked.nextBatch = answer.nextBatch;
      asked.terms = highlightTerms(asked.term, answer.highlights);
      for (const hit of answer.hits) {
        if (asked.shown.has(hit.eventId)) continue;
        asked.shown.add(hit.eventId);
        list.append(result(asked, hit));
      }
      // The server counts events: a message and its edit are two, shown as one. Once every page
      // is in, the count is what is shown; before, the server's is the best there is.
      const count = asked.nextBatch ? Math.max(answer.count ?? 0, asked.shown.size) : asked.shown.size;
      say(count === 0 ? `No messages match “${asked.term}”.` : `${count} result${count === 1 ? "" : "s"}`);
      more.hidden = !asked.nextBatch;
    } catch (error) {
      if (asked === search) say(`The search failed: ${describeError(error)}`);
    } finally {
      more.disabled = false;
    }
  }

  function result(asked, hit) {
    const room = sync.room(hit.roomId);
    const sid = asked.server?.server_id ?? null;
    return messageSummary({
      testid: "search-result",
      eventId: hit.eventId,
      author: hit.displayName ?? room?.displayName(hit.sender) ?? hit.sender,
      authorColor: sid ? roleColor(sid, hit.sender) : null,
      channelName: asked.names.get(hit.roomId) ?? null,
      ts: hit.ts,
      body: hit.body,
      terms: asked.terms,
      onOpen: () =>
        asked.dm
          ? revealMessage({ sync, roomId: hit.roomId, eventId: hit.eventId, reveal: asked.dm.reveal })
          : openMessage({ sync, serverId: sid, roomId: hit.roomId, eventId: hit.eventId, threadId: threadOf(sync, hit) }),
    });
  }


  /** The thread a hit is a reply in: its own relation, or an edit's original's as loaded. */
  function threadOf(syncEngine, hit) {
    if (hit.threadId) return hit.threadId;
    const relation = syncEngine.room(hit.roomId)?.byId.get(hit.eventId)?.content?.["m.relates_to"];
    return relation?.rel_type === "m.thread" ? relation.event_id : null;
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  const el = h("span", { class: "search-tool" }, form, panel.el);
  /** What a search belongs to: results stay while it is open. */
  const placeKey = (here) => (here?.dm ? `dm:${here.channel.channel_id}` : (here?.server?.server_id ?? null));
  return {
    el,
    /** The open channel changed: the scope names it; results stay until the next search. */
    update() {
      const here = current();
      el.hidden = !(here?.server || here?.dm);
      // A DM is one conversation: nothing to choose.
      scope.hidden = Boolean(here?.dm);
      channelOption.textContent = here?.channel && !here.dm ? `#${here.channel.name}` : "This channel";
      if (search && search.key !== placeKey(here)) {
        search = null;
        panel.close();
      }
    },
  };
}
