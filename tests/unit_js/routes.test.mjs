// Deep links (web/static/js/routes.js): reading and writing the fragment that names a channel.

import assert from "node:assert/strict";
import { test } from "node:test";

import { HOME, formatRoute, parseRoute } from "../../web/static/js/routes.js";

const SID = "!space:guilds.test";
const CID = "!general/odd?#room:guilds.test";
const EID = "$event+id/with=chars";
const TID = "$thread/root?#id";

test("a channel, and a message in it, round-trip through the fragment", () => {
  for (const route of [
    { serverId: SID, channelId: null, eventId: null, threadId: null },
    { serverId: SID, channelId: CID, eventId: null, threadId: null },
    { serverId: SID, channelId: CID, eventId: EID, threadId: null },
    { serverId: SID, channelId: CID, eventId: null, threadId: TID },
    { serverId: SID, channelId: CID, eventId: EID, threadId: TID },
  ]) {
    const hash = formatRoute(route);
    assert.match(hash, /^#\/server\//);
    // Every id is one path segment: nothing in it can be read as a separator.
    const parts = 3 + (route.channelId ? 2 : 0) + (route.eventId ? 2 : 0) + (route.threadId ? 2 : 0);
    assert.equal(hash.split("/").length, parts);
    assert.deepEqual(parseRoute(hash), route);
    assert.deepEqual(parseRoute(hash.slice(1)), route);
  }
});

test("the channel's address is readable", () => {
  assert.equal(
    formatRoute({ serverId: "!a:hs", channelId: "!b:hs" }),
    "#/server/!a%3Ahs/channel/!b%3Ahs",
  );
  assert.equal(
    formatRoute({ serverId: "!a:hs", channelId: "!b:hs", threadId: "$t", eventId: "$e" }),
    "#/server/!a%3Ahs/channel/!b%3Ahs/thread/%24t/message/%24e",
  );
});

test("no fragment is Home, and Home has no fragment", () => {
  assert.equal(parseRoute(""), HOME);
  assert.equal(parseRoute("#"), HOME);
  assert.equal(parseRoute("#/"), HOME);
  assert.equal(formatRoute(HOME), "");
  assert.equal(formatRoute({ serverId: null, channelId: CID }), "");
});

test("the invite landing page's #server=<id> still opens the server", () => {
  assert.deepEqual(parseRoute(`#server=${encodeURIComponent(SID)}`), { serverId: SID, channelId: null, eventId: null, threadId: null });
  assert.equal(parseRoute("#server="), null);
});

test("fragments this app cannot read are refused, not guessed at", () => {
  for (const hash of [
    "#/elsewhere",
    "#/server/",
    "#/server/%E0%A4%A",
    "#/server/!a:hs/room/!b:hs",
    "#/server/!a:hs/channel/",
    "#/server/!a:hs/channel/!b:hs/message/",
    "#/server/!a:hs/channel/!b:hs/reply/$e",
    "#/server/!a:hs/channel/!b:hs/message/$e/more",
    "#server=a/b",
    "#/server/!a:hs/thread/$t",
    "#/server/!a:hs/channel/!b:hs/thread/",
    "#/server/!a:hs/channel/!b:hs/message/$e/thread/$t",
    "#/server/!a:hs/channel/!b:hs/thread/$t/thread/$u",
    "#/server/!a:hs/channel/!b:hs/channel/!c:hs",
  ]) {
    assert.equal(parseRoute(hash), null, hash);
  }
});
