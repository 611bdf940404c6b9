// A channel's threads, the most recently active first: the server's list (`/threads`, with each
// root's bundled count and latest reply) joined with the threads the sync has shown since.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { plainPreview } from "../markdown.js";
import { replyCountText } from "../threads.js";

/** The first line of a message's text, for a one-line preview. */
export function previewText(room, event) {
  const content = room.latestEdit(event)?.content?.["m.new_content"] ?? event.content ?? {};
  return plainPreview(content).split("\n")[0].slice(0, 200);
}

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {() => import("../sync.js").Room|null} options.room
 * @param {(rootId: string) => void} options.onOpen
 * @param {() => void} options.onClose
 */
export function createThreadList({ client, room, onOpen, onClose }) {
  let next = null; // the server's next page, when it has more
  let loading = false;
  let loadError = null;
  let lastSignature = null;
  const askedRoots = new Set(); // roots fetched because only a reply to them was seen

  const items = h("ol", { class: "thread-list", "data-testid": "thread-list" });
  const status = h("p", { class: "thread-status muted", "data-testid": "thread-list-status", role: "status" });
  const more = h("button", { type: "button", class: "link-button", "data-testid": "thread-list-more", text: "Load more threads", onclick: () => load() });
  more.hidden = true;
  const el = h(
    "aside",
    { class: "side-panel thread-list-panel", "data-testid": "thread-list-panel", "aria-label": "Threads" },
    h(
      "header",
      { class: "side-panel-header" },
      h("span", { class: "side-panel-icon", "aria-hidden": "true" }, icon("messages-square", { size: 18 })),
      h("h2", { class: "side-panel-title", text: "Threads" }),
      h("button", { type: "button", class: "side-panel-button", title: "Close threads", "aria-label": "Close threads", "data-testid": "thread-list-close", onclick: onClose }, icon("x", { size: 18 })),
    ),
    h("div", { class: "thread-scroller" }, status, items, more),
  );

  async function load() {
    const r = room();
    if (!r || loading) return;
    loading = true;
    render();
    try {
      const answer = await client.threads(r.roomId, { from: next });
      // The roots carry their bundled summary: the room's thread index counts from it.
      for (const root of answer.chunk ?? []) r.indexRelations({ ...root, room_id: r.roomId });
      next = answer.next_batch ?? null;
      loadError = null;
    } catch (e) {
      loadError = `Threads could not be loaded: ${describeError(e)}`;
    } finally {
      loading = false;
      render();
    }
  }

  /** A root the sync has not brought (only a reply to it): fetched once, for its text. */
  function fetchRoot(r, rootId) {
    if (askedRoots.has(rootId)) return;
    askedRoots.add(rootId);
    client
      .getEvent(r.roomId, rootId)
      .then((event) => {
        r.indexRelations({ ...event, room_id: r.roomId });
        render();
      })
      .catch((e) => console.warn("thread root failed to load", e));
  }

  function itemNode(r, summary) {
    const root = r.byId.get(summary.rootId);
    if (!root) fetchRoot(r, summary.rootId);
    const rootText = !root ? "Loading…" : r.redacted.has(summary.rootId) ? "Deleted message" : previewText(r, root);
    const latest = summary.latest;
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: `thread-list-item${r.threads.unreadOf(summary.rootId).notifications ? " unread" : ""}`,
          "data-testid": "thread-list-item",
          "data-root-id": summary.rootId,
          onclick: () => onOpen(summary.rootId),
        },
        h("span", { class: "thread-list-root" },
          root ? h("strong", { class: "reply-name", text: r.displayName(root.sender) }) : null,
          h("span", { class: "thread-list-text", "data-testid": "thread-list-root", text: rootText }),
        ),
        h("span", { class: "thread-list-meta muted" },
          h("span", { class: "thread-count-label", "data-testid": "thread-list-count", text: replyCountText(summary.count) }),
          latest ? h("span", { class: "thread-list-latest", "data-testid": "thread-list-latest", text: ` · ${r.displayName(latest.sender)}: ${previewText(r, latest)}` }) : null,
        ),
      ),
    );
  }

  function render() {
    const r = room();
    if (!r) return;
    const summaries = r.threads.summaries();
    // Drawn again only when something shown changed (a sync touches the room often).
    const signature = summaries
      .map((s) => {
        const root = r.byId.get(s.rootId);
        const edit = root ? r.latestEdit(root)?.event_id : "";
        return `${s.rootId}:${Boolean(root)}:${edit}:${s.count}:${s.latest?.event_id}:${r.threads.unreadOf(s.rootId).notifications}`;
      })
      .join("|");
    if (signature !== lastSignature) {
      lastSignature = signature;
      items.replaceChildren(...summaries.map((s) => itemNode(r, s)));
    }
    status.textContent = loadError ?? (loading ? "Loading threads…" : summaries.length ? "" : "No threads in this channel yet.");
    status.hidden = !status.textContent;
    more.hidden = !next || loading;
  }

  load();
  return { el, render, focus: () => items.querySelector("button")?.focus() };
}
