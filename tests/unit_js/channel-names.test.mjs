import assert from "node:assert/strict";
import { test } from "node:test";

import { channelNameAsTyped, normalizeChannelName } from "../../web/static/js/channel-names.js";

test("a text channel's name is lower case with single dashes for spaces", () => {
  assert.equal(normalizeChannelName("Book Club", "text"), "book-club");
  assert.equal(normalizeChannelName("  Book   Club  ", "text"), "book-club");
  assert.equal(normalizeChannelName("Off - Topic", "text"), "off-topic");
  assert.equal(normalizeChannelName("-News-", "text"), "news");
  assert.equal(normalizeChannelName("Ünïcode Ça", "text"), "ünïcode-ça");
});

test("while typing, a trailing dash stays so the next word can follow", () => {
  assert.equal(channelNameAsTyped("Book ", "text"), "book-");
  assert.equal(channelNameAsTyped("Book -", "text"), "book-");
});

test("voice and video channels keep the name as typed", () => {
  assert.equal(normalizeChannelName("  Chill Lounge ", "voice"), "Chill Lounge");
  assert.equal(channelNameAsTyped("Movie Night", "video"), "Movie Night");
});
