// The header's search box, as in Discord: messages of the open channel or of the whole server
// (the channels of it this user is in), found by the homeserver's `/search`, newest first, the
// matched words marked, more on demand; a result opens its message in its channel.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { MAX_QUERY_LENGTH, highlightTerms, normalizeQuery, readSearchAnswer, searchRequest } from "../search.js";
import { createHeaderPanel } from "./header-panel.js";
import { openMessage } from "./jump.js";
import { messageSummary } from "./message-summary.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {() => {server: any, channel: any} | null} options.current  the open server and channel
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
    if (!here?.server || !term) return;
    const serverWide = scope.value === "server" || !here.channel;
    const channels = (here.server.channels ?? []).filter((c) => sync.room(c.channel_id));
    const roomIds = serverWide ? channels.map((c) => c.channel_id) : [here.channel.channel_id];
    search = {
      term,
      server: here.server,
      names: new Map((here.server.channels ?? []).map((c) => [c.channel_id, c.name])),
      body: searchRequest({ term, roomIds }),
      nextBatch: null,
      terms: highlightTerms(term),
      shown: new Set(),
    };
    panel.setTitle(serverWide ? `Search in ${here.server.name}` : `Search in #${here.channel.name}`);
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
    const sid = asked.server.server_id;
    return messageSummary({
      testid: "search-result",
      eventId: hit.eventId,
      author: hit.displayName ?? room?.displayName(hit.sender) ?? hit.sender,
      authorColor: roleColor(sid, hit.sender),
      channelName: asked.names.get(hit.roomId) ?? null,
      ts: hit.ts,
      body: hit.body,
      terms: asked.terms,
      onOpen: () => openMessage({ sync, serverId: sid, roomId: hit.roomId, eventId: hit.eventId }),
    });
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  const el = h("span", { class: "search-tool" }, form, panel.el);
  return {
    el,
    /** The open channel changed: the scope names it; results stay until the next search. */
    update() {
      const here = current();
      el.hidden = !here?.server;
      channelOption.textContent = here?.channel ? `#${here.channel.name}` : "This channel";
      if (search && search.server.server_id !== here?.server?.server_id) {
        search = null;
        panel.close();
      }
    },
  };
}
