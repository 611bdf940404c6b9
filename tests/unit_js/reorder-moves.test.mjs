// What a sidebar move sends and says (web/static/js/views/reorder-moves.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { channelMove, withCategoryMoved, withChannelMoved, categoryMove } from "../../web/static/js/channel-order.js";
import { channelMoveBody, describePlace, moveLabel } from "../../web/static/js/views/reorder-moves.js";

const channel = (channel_id, kind, category_id, order) => ({ channel_id, name: channel_id, kind, category_id, order });

function server() {
  return {
    server_id: "!s",
    default_channel_id: "general",
    categories: [
      { category_id: "A", name: "Ay", order: "000000" },
      { category_id: "B", name: "Bee", order: "000001" },
    ],
    channels: [
      channel("general", "text", null, "000000"),
      channel("news", "text", null, "000001"),
      channel("a1", "text", "A", "000000"),
      channel("a2", "text", "A", "000001"),
    ],
  };
}

test("a channel is named with its #, a category as it is", () => {
  assert.equal(moveLabel("channel", { name: "news" }), "#news");
  assert.equal(moveLabel("category", { name: "Ay" }), "Ay");
  assert.equal(moveLabel("channel", undefined), "#");
});

test("a move within its category sends the order only; across categories the category too", () => {
  const s = server();
  const within = channelMove(s, "a2", { categoryId: "A", index: 0 });
  assert.deepEqual(channelMoveBody(s.channels[3], within), { order: within.position });
  const across = channelMove(s, "news", { categoryId: "B", index: 0 });
  assert.deepEqual(channelMoveBody(s.channels[1], across), { order: across.position, category_id: "B" });
  const toTop = channelMove(s, "a1", { categoryId: null, index: 2 });
  assert.deepEqual(channelMoveBody(s.channels[2], toTop), { order: toTop.position, category_id: null });
});

test("where a move left a channel, as a screen reader hears it", () => {
  const s = server();
  const intoB = withChannelMoved(s, "news", channelMove(s, "news", { categoryId: "B", index: 0 }));
  assert.equal(describePlace(intoB, "channel", "news", "#news"), "#news moved to Bee.");
  const toTop = withChannelMoved(s, "a1", channelMove(s, "a1", { categoryId: null, index: 0 }));
  assert.equal(describePlace(toTop, "channel", "a1", "#a1"), "#a1 moved to the top.");
});

test("where a move left a category: its position, counted from 1", () => {
  const s = server();
  const moved = withCategoryMoved(s, "B", categoryMove(s, "B", 0));
  assert.equal(describePlace(moved, "category", "B", "Bee"), "Bee moved to position 1.");
  assert.equal(describePlace(s, "category", "B", "Bee"), "Bee moved to position 2.");
});
