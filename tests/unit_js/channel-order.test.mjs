// The sidebar's order and what a move asks of the API (web/static/js/channel-order.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  categoryMove,
  channelMove,
  channelStep,
  orderKey,
  sidebarCategories,
  sidebarChannels,
  withCategoryMoved,
  withChannelMoved,
} from "../../web/static/js/channel-order.js";

const channel = (channel_id, kind, category_id, order) => ({ channel_id, name: channel_id, kind, category_id, order });

/** A server: general and news at the top; category A (text a1 a2 a3, voice av1 av2); B empty. */
function server() {
  return {
    server_id: "!s",
    default_channel_id: "general",
    categories: [
      { category_id: "B", name: "Bee", order: "000001" },
      { category_id: "A", name: "Ay", order: "000000" },
      { category_id: "C", name: "Sea", order: "000002" },
    ],
    channels: [
      channel("general", "text", null, "000000"),
      channel("news", "text", null, "000001"),
      // Made in the order voice, text, text, voice, text: Matrix order interleaves the kinds.
      channel("av1", "voice", "A", "000000"),
      channel("a1", "text", "A", "000001"),
      channel("a2", "text", "A", "000002"),
      channel("av2", "voice", "A", "000003"),
      channel("a3", "text", "A", "000004"),
      channel("c1", "text", "C", "000000"),
    ],
  };
}

const ids = (list) => list.map((c) => c.channel_id ?? c.category_id);

/** Apply a move as the bridge would (what withChannelMoved shows) and read the sidebar. */
function afterMove(s, id, target) {
  const move = channelMove(s, id, target);
  assert.ok(move, `no move for ${id} to ${JSON.stringify(target)}`);
  return withChannelMoved(s, id, move);
}

test("the sidebar: categories in order; in each, kinds first, then order; ties by room id", () => {
  const s = server();
  assert.deepEqual(ids(sidebarCategories(s)), ["A", "B", "C"]);
  assert.deepEqual(ids(sidebarChannels(s, null)), ["general", "news"]);
  assert.deepEqual(ids(sidebarChannels(s, "A")), ["a1", "a2", "a3", "av1", "av2"]);
  assert.deepEqual(ids(sidebarChannels(s, "B")), []);
  s.channels.push(channel("b2", "text", "B", "000005"), channel("b1", "text", "B", "000005"));
  assert.deepEqual(ids(sidebarChannels(s, "B")), ["b1", "b2"]);
  assert.equal(orderKey(12), "000012");
});

test("a move within a category is the position among the other children in Matrix order", () => {
  const s = server();
  // a3 dropped first among A's shown channels: before a1, which is second in Matrix order.
  assert.deepEqual(channelMove(s, "a3", { categoryId: "A", index: 0 }), { categoryId: "A", position: 1 });
  assert.deepEqual(ids(sidebarChannels(afterMove(s, "a3", { categoryId: "A", index: 0 }), "A")), [
    "a3", "a1", "a2", "av1", "av2",
  ]);
  // a1 dropped after a2 (index 1 of the list without a1).
  assert.deepEqual(ids(sidebarChannels(afterMove(s, "a1", { categoryId: "A", index: 1 }), "A")), [
    "a2", "a1", "a3", "av1", "av2",
  ]);
  // Every index gives the shown order one expects, and the orders stay distinct.
  const shown = ids(sidebarChannels(s, "A")).filter((id) => id !== "a2");
  for (let index = 0; index <= 2; index++) {
    if (index === 1) {
      assert.equal(channelMove(s, "a2", { categoryId: "A", index }), null); // where it is
      continue;
    }
    const after = afterMove(s, "a2", { categoryId: "A", index });
    const expected = shown.slice();
    expected.splice(index, 0, "a2");
    assert.deepEqual(ids(sidebarChannels(after, "A")), expected);
    const orders = after.channels.filter((c) => c.category_id === "A").map((c) => c.order);
    assert.equal(new Set(orders).size, orders.length);
  }
});

test("a drop outside the channel's kind is kept inside its kind", () => {
  const s = server();
  // A voice channel dropped at the top lands first among the voice channels.
  assert.deepEqual(ids(sidebarChannels(afterMove(s, "av2", { categoryId: "A", index: 0 }), "A")), [
    "a1", "a2", "a3", "av2", "av1",
  ]);
  // A text channel dropped at the very end lands last among the text channels.
  assert.deepEqual(ids(sidebarChannels(afterMove(s, "a1", { categoryId: "A", index: 99 }), "A")), [
    "a2", "a3", "a1", "av1", "av2",
  ]);
});

test("dropped where it already is, nothing is asked", () => {
  const s = server();
  assert.equal(channelMove(s, "a2", { categoryId: "A", index: 1 }), null);
  assert.equal(channelMove(s, "av1", { categoryId: "A", index: 0 }), null); // kept in its kind: same place
  assert.equal(categoryMove(s, "B", 1), null);
});

test("a move to another category names it; into an empty one, at the top level too", () => {
  const s = server();
  assert.deepEqual(channelMove(s, "a2", { categoryId: "B", index: 0 }), { categoryId: "B", position: 0 });
  const moved = afterMove(s, "a2", { categoryId: "C", index: 0 });
  assert.deepEqual(ids(sidebarChannels(moved, "C")), ["a2", "c1"]);
  assert.deepEqual(ids(sidebarChannels(moved, "A")), ["a1", "a3", "av1", "av2"]);
  const up = afterMove(s, "av1", { categoryId: null, index: 1 });
  assert.deepEqual(ids(sidebarChannels(up, null)), ["general", "news", "av1"]);
  assert.equal(up.channels.find((c) => c.channel_id === "av1").category_id, null);
});

test("the default channel stays at the top level; unknown channels and categories ask nothing", () => {
  const s = server();
  assert.equal(channelMove(s, "general", { categoryId: "A", index: 0 }), null);
  assert.deepEqual(channelMove(s, "general", { categoryId: null, index: 1 }), { categoryId: null, position: 1 });
  assert.equal(channelMove(s, "nope", { categoryId: null, index: 0 }), null);
  assert.equal(channelMove(s, "a1", { categoryId: "Z", index: 0 }), null);
  assert.equal(categoryMove(s, "Z", 0), null);
});

test("categories move among categories", () => {
  const s = server();
  assert.deepEqual(categoryMove(s, "C", 0), { position: 0 });
  assert.deepEqual(ids(sidebarCategories(withCategoryMoved(s, "C", { position: 0 }))), ["C", "A", "B"]);
  assert.deepEqual(categoryMove(s, "A", 5), { position: 2 });
  assert.deepEqual(ids(sidebarCategories(withCategoryMoved(s, "A", { position: 2 }))), ["B", "C", "A"]);
  const orders = withCategoryMoved(s, "A", { position: 2 }).categories.map((c) => c.order);
  assert.deepEqual(orders.sort(), ["000000", "000001", "000002"]);
});

test("the keyboard: one step within the kind, then into the next category, never the default out", () => {
  const s = server();
  const go = (id, delta) => {
    const step = channelStep(s, id, delta);
    return step && channelMove(s, id, step) && withChannelMoved(s, id, channelMove(s, id, step));
  };
  assert.deepEqual(ids(sidebarChannels(go("a2", -1), "A")), ["a2", "a1", "a3", "av1", "av2"]);
  assert.deepEqual(ids(sidebarChannels(go("a2", 1), "A")), ["a1", "a3", "a2", "av1", "av2"]);
  assert.deepEqual(ids(sidebarChannels(go("av1", 1), "A")), ["a1", "a2", "a3", "av2", "av1"]);
  // The last text channel of A goes down into B (empty), the first up to the top level's end.
  const down = go("a3", 1);
  assert.deepEqual(ids(sidebarChannels(down, "B")), ["a3"]);
  const up = go("a1", -1);
  assert.deepEqual(ids(sidebarChannels(up, null)), ["general", "news", "a1"]);
  // c1 in the last category cannot go further down; general cannot leave the top.
  assert.equal(channelStep(s, "c1", 1), null);
  assert.equal(channelStep(s, "general", -1), null);
  assert.deepEqual(ids(sidebarChannels(go("news", 1), "A")), ["news", "a1", "a2", "a3", "av1", "av2"]);
  assert.equal(channelStep(s, "general", 1).categoryId, null); // below news, still at the top
  assert.deepEqual(ids(sidebarChannels(go("news", -1), null)), ["news", "general"]);
});
