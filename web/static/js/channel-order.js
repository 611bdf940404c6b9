// How a server's channels and categories are ordered in the sidebar, and what a move asks of the
// provisioning API: pure functions of the `Server` shape (docs/API.md), no DOM and no requests.
//
// Guilds keeps order where every Matrix client reads it: the `order` of each `m.space.child`
// (a sort key string; ties, which Guilds never writes, fall back to the room id as the bridge
// does). The sidebar shows, as Discord does, the top-level channels first, then each category
// in its order; inside one, text channels before voice before video, each kind in its order.
// A move is one `PATCH` with `{category_id?, order}`, `order` being the 0-based position among
// the new parent's other children in Matrix order: the bridge renumbers them all in one queued
// operation, so concurrent moves converge instead of racing.

export const KIND_RANK = Object.freeze({ text: 0, voice: 1, video: 2 });

/** What `PATCH`'s `order` sets, as the bridge writes it (guilds/model.py `order_key`). */
export function orderKey(index) {
  return String(index).padStart(6, "0");
}

const idOf = (item) => item.channel_id ?? item.category_id;
const rankOf = (channel) => KIND_RANK[channel.kind] ?? 9;

/** Matrix order: by `order` as strings, then by room id. */
export function byMatrixOrder(a, b) {
  const x = String(a.order ?? "");
  const y = String(b.order ?? "");
  if (x !== y) return x < y ? -1 : 1;
  const p = idOf(a);
  const q = idOf(b);
  return p === q ? 0 : p < q ? -1 : 1;
}

/** The categories as the sidebar shows them. */
export function sidebarCategories(server) {
  return [...(server?.categories ?? [])].sort(byMatrixOrder);
}

/** The channels of one category (null: the top level) as the sidebar shows them. */
export function sidebarChannels(server, categoryId) {
  return (server?.channels ?? [])
    .filter((c) => (c.category_id ?? null) === (categoryId ?? null))
    .sort((a, b) => rankOf(a) - rankOf(b) || byMatrixOrder(a, b));
}

/** Whether this channel may leave the top level (the default channel stays there). */
export function isMovableToCategory(server, channel) {
  return !(channel.default || channel.channel_id === server?.default_channel_id);
}

/**
 * The request for dropping a channel at `index` of a category's list as shown (the list
 * without the channel itself). The index is kept inside the run of the channel's kind, since
 * the sidebar sorts kinds first.
 * @returns {{categoryId: string|null, position: number}|null}  null when nothing would change
 *   or the move is not allowed (the default channel into a category)
 */
export function channelMove(server, channelId, { categoryId = null, index }) {
  const channel = (server?.channels ?? []).find((c) => c.channel_id === channelId);
  if (!channel) return null;
  const target = categoryId ?? null;
  const from = channel.category_id ?? null;
  if (target !== null && !isMovableToCategory(server, channel)) return null;
  if (target !== null && !(server.categories ?? []).some((c) => c.category_id === target)) return null;

  const shown = sidebarChannels(server, target).filter((c) => c.channel_id !== channelId);
  const rank = rankOf(channel);
  const start = shown.filter((c) => rankOf(c) < rank).length;
  const end = start + shown.filter((c) => rankOf(c) === rank).length;
  const at = Math.max(start, Math.min(end, Math.round(index)));
  if (target === from && sidebarChannels(server, from).findIndex((c) => c.channel_id === channelId) === at) {
    return null; // dropped where it already is
  }

  // The position in Matrix order that puts the channel between its neighbours of the same kind.
  const siblings = shown.slice().sort(byMatrixOrder);
  let position;
  if (at < end) position = siblings.indexOf(shown[at]);
  else if (at > start) position = siblings.indexOf(shown[at - 1]) + 1;
  else {
    // The first of its kind here: before the first child of a later kind, else last.
    const later = siblings.findIndex((c) => rankOf(c) > rank);
    position = later === -1 ? siblings.length : later;
  }
  return { categoryId: target, position };
}

/**
 * The request for dropping a category at `index` of the categories as shown (without itself).
 * @returns {{position: number}|null}  null when it is already there
 */
export function categoryMove(server, categoryId, index) {
  const shown = sidebarCategories(server);
  const now = shown.findIndex((c) => c.category_id === categoryId);
  if (now === -1) return null;
  const others = shown.length - 1;
  const position = Math.max(0, Math.min(others, Math.round(index)));
  return position === now ? null : { position };
}

/**
 * The server as it will be once the bridge has carried out a channel move: the moved channel
 * under its new parent, and that parent's children renumbered densely (the bridge's
 * `reordered`). Used to show a move at once, before the answer.
 */
export function withChannelMoved(server, channelId, { categoryId, position }) {
  const target = categoryId ?? null;
  const siblings = (server.channels ?? [])
    .filter((c) => (c.category_id ?? null) === target && c.channel_id !== channelId)
    .sort(byMatrixOrder)
    .map((c) => c.channel_id);
  siblings.splice(Math.max(0, Math.min(position, siblings.length)), 0, channelId);
  const orders = new Map(siblings.map((id, i) => [id, orderKey(i)]));
  return {
    ...server,
    channels: (server.channels ?? []).map((c) =>
      orders.has(c.channel_id)
        ? { ...c, category_id: c.channel_id === channelId ? target : c.category_id, order: orders.get(c.channel_id) }
        : c,
    ),
  };
}

/** The server as it will be once a category move is carried out (categories renumbered). */
export function withCategoryMoved(server, categoryId, { position }) {
  const ids = sidebarCategories(server)
    .map((c) => c.category_id)
    .filter((id) => id !== categoryId);
  ids.splice(Math.max(0, Math.min(position, ids.length)), 0, categoryId);
  const orders = new Map(ids.map((id, i) => [id, orderKey(i)]));
  return {
    ...server,
    categories: (server.categories ?? []).map((c) => ({ ...c, order: orders.get(c.category_id) ?? c.order })),
  };
}

/**
 * Where one keyboard step (Alt+ArrowUp: -1, Alt+ArrowDown: +1) takes a channel: one place up or
 * down among its kind; past the first or last of its kind, to the end or start of that kind in
 * the category above or below (the top level counts as the first; the default channel stays
 * there).
 * @returns {{categoryId: string|null, index: number}|null}  a drop target for channelMove
 */
export function channelStep(server, channelId, delta) {
  const channel = (server?.channels ?? []).find((c) => c.channel_id === channelId);
  if (!channel) return null;
  const from = channel.category_id ?? null;
  const rank = rankOf(channel);
  const run = sidebarChannels(server, from).filter((c) => rankOf(c) === rank);
  const at = run.findIndex((c) => c.channel_id === channelId);
  const shown = sidebarChannels(server, from).filter((c) => c.channel_id !== channelId);
  const start = shown.filter((c) => rankOf(c) < rank).length;
  if (delta < 0 && at > 0) return { categoryId: from, index: start + at - 1 };
  if (delta > 0 && at < run.length - 1) return { categoryId: from, index: start + at + 1 };
  if (!isMovableToCategory(server, channel)) return null;
  // Into the neighbouring category: the top level, then the categories in order.
  const parents = [null, ...sidebarCategories(server).map((c) => c.category_id)];
  const next = parents[parents.indexOf(from) + (delta < 0 ? -1 : 1)];
  if (next === undefined) return null;
  const there = sidebarChannels(server, next);
  const before = there.filter((c) => rankOf(c) < rank).length;
  const same = there.filter((c) => rankOf(c) === rank).length;
  return { categoryId: next, index: delta < 0 ? before + same : before };
}
