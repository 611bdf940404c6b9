// Threads (web/static/js/threads.js): the content of a thread reply, and what a room knows of its
// threads when replies and the server's bundled counts arrive in any order.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Room, SyncEngine } from "../../web/static/js/sync.js";
import {
  ThreadIndex,
  bundledThread,
  canBeThreadRoot,
  isFallbackReply,
  lastMainEventId,
  replyCountText,
  threadReplyContent,
  threadRootOf,
} from "../../web/static/js/threads.js";

const ROOT = "$root";

function message(id, ts, { sender = "@a:t", body = id, rel = null, unsigned = undefined } = {}) {
  const content = { msgtype: "m.text", body };
  if (rel) content["m.relates_to"] = rel;
  return { event_id: id, type: "m.room.message", sender, origin_server_ts: ts, content, unsigned };
}

function reply(id, ts, options = {}) {
  return message(id, ts, { ...options, rel: { rel_type: "m.thread", event_id: ROOT, is_falling_back: true, "m.in_reply_to": { event_id: ROOT } } });
}

function rootWithBundle(count, latest) {
  return message(ROOT, 1, { unsigned: { "m.relations": { "m.thread": { count, latest_event: latest, current_user_participated: false } } } });
}

test("a thread reply names its root, and falls back to a reply to the thread's latest event", () => {
  const body = { msgtype: "m.text", body: "hello", format: "org.matrix.custom.html", formatted_body: "<b>hello</b>" };
  const content = threadReplyContent(body, ROOT, "$latest");
  assert.deepEqual(content["m.relates_to"], {
    rel_type: "m.thread",
    event_id: ROOT,
    is_falling_back: true,
    "m.in_reply_to": { event_id: "$latest" },
  });
  assert.equal(content.body, "hello");
  assert.equal(content.formatted_body, "<b>hello</b>");
  assert.equal(body["m.relates_to"], undefined, "the content given is left alone");
  const event = { content };
  assert.equal(threadRootOf(event), ROOT);
  assert.equal(isFallbackReply(event), true);
});

test("a reply to one message of the thread on purpose is a real reply, not a fallback", () => {
  const content = threadReplyContent({ msgtype: "m.text", body: "yes" }, ROOT, "$latest", "$quoted");
  assert.equal(content["m.relates_to"].is_falling_back, false);
  assert.deepEqual(content["m.relates_to"]["m.in_reply_to"], { event_id: "$quoted" });
  assert.equal(isFallbackReply({ content }), false);
});

test("only a plain message with an id can start a thread", () => {
  assert.equal(canBeThreadRoot(message("$m", 1)), true);
  assert.equal(canBeThreadRoot(message("$m", 1, { rel: { "m.in_reply_to": { event_id: "$x" } } })), true);
  assert.equal(canBeThreadRoot(reply("$r", 2)), false);
  assert.equal(canBeThreadRoot(message("$e", 1, { rel: { rel_type: "m.replace", event_id: "$m" } })), false);
  assert.equal(canBeThreadRoot(message("~txn", 1)), false);
  assert.equal(canBeThreadRoot({ event_id: "$s", type: "m.sticker", content: {} }), false);
  assert.equal(threadRootOf(message("$m", 1)), null);
  assert.equal(threadRootOf({ content: { "m.relates_to": { rel_type: "m.thread" } } }), null);
});

test("the server's bundled summary is read, and a malformed one is not trusted", () => {
  const latest = reply("$r2", 3);
  assert.deepEqual(bundledThread(rootWithBundle(2, latest)), { count: 2, latest });
  assert.equal(bundledThread(message("$m", 1)), null);
  const odd = message("$m", 1, { unsigned: { "m.relations": { "m.thread": { count: -3, latest_event: { no: "id" } } } } });
  assert.deepEqual(bundledThread(odd), { count: 0, latest: null });
});

test("live replies are counted once each, whatever path brought them", () => {
  const index = new ThreadIndex();
  assert.equal(index.summary(ROOT), null);
  assert.equal(index.latestId(ROOT), ROOT, "no reply yet: a first reply falls back to the root");
  index.add(message(ROOT, 1));
  assert.equal(index.summary(ROOT), null);
  index.add(reply("$r1", 2));
  index.add(reply("$r2", 3, { sender: "@b:t" }));
  index.add(reply("$r1", 2));
  const summary = index.summary(ROOT);
  assert.equal(summary.count, 2);
  assert.equal(summary.latest.event_id, "$r2");
  assert.equal(index.latestId(ROOT), "$r2");
  assert.deepEqual(index.replies(ROOT).map((e) => e.event_id), ["$r1", "$r2"]);
});

test("a bundled count is the base: replies newer than its latest add to it, older ones do not", () => {
  const index = new ThreadIndex();
  // After a reload: the root says 3 replies; the last of them is also in the loaded timeline.
  index.add(rootWithBundle(3, reply("$r3", 30)));
  index.add(reply("$r3", 30));
  assert.equal(index.summary(ROOT).count, 3);
  // A reply older than the bundle's latest, from a page of history: already counted.
  index.add(reply("$r2", 20));
  assert.equal(index.summary(ROOT).count, 3);
  // One sent since, from the live sync: counted on top.
  index.add(reply("$r4", 40, { sender: "@b:t" }));
  assert.deepEqual([index.summary(ROOT).count, index.summary(ROOT).latest.event_id], [4, "$r4"]);
  // An older snapshot of the same root seen again (older history) does not undo that.
  index.add(rootWithBundle(1, reply("$r1", 10)));
  assert.equal(index.summary(ROOT).count, 4);
});

test("the summary shows the bundle's latest reply until a newer one arrives", () => {
  const index = new ThreadIndex();
  index.add(rootWithBundle(5, reply("$r5", 50, { body: "fifth" })));
  assert.equal(index.summary(ROOT).latest.content.body, "fifth");
  assert.deepEqual(index.replies(ROOT), [], "the bundled latest is not a reply fetched here");
});

test("once the whole thread is fetched, its replies are the count", () => {
  const index = new ThreadIndex();
  index.add(rootWithBundle(2, reply("$r2", 20)));
  index.setComplete(ROOT, [reply("$r2", 20), reply("$r1", 10), reply("$r3", 30)]);
  assert.equal(index.isComplete(ROOT), true);
  assert.equal(index.summary(ROOT).count, 3);
  assert.deepEqual(index.replies(ROOT).map((e) => e.event_id), ["$r1", "$r2", "$r3"]);
});

test("a deleted reply is counted no more, whether the bundle or the index counted it", () => {
  const index = new ThreadIndex();
  index.add(rootWithBundle(2, reply("$r2", 20)));
  index.add(reply("$r3", 30));
  assert.equal(index.summary(ROOT).count, 3);
  index.redact("$r3");
  assert.deepEqual([index.summary(ROOT).count, index.summary(ROOT).latest.event_id], [2, "$r2"]);
  index.redact("$r2");
  assert.equal(index.summary(ROOT).count, 1);
  // A redaction seen before its reply: the reply is not counted when it arrives.
  index.redact("$r9");
  index.add(reply("$r9", 90));
  assert.equal(index.summary(ROOT).count, 1);
});

test("threads are listed most recently active first", () => {
  const index = new ThreadIndex();
  const other = (id, ts) => message(id, ts, { rel: { rel_type: "m.thread", event_id: "$other" } });
  index.add(reply("$r1", 10));
  index.add(other("$o1", 20));
  assert.deepEqual(index.summaries().map((s) => s.rootId), ["$other", ROOT]);
  index.add(reply("$r2", 30));
  assert.deepEqual(index.summaries().map((s) => [s.rootId, s.count]), [[ROOT, 2], ["$other", 1]]);
});

test("a room indexes thread replies from its timeline and its redactions", () => {
  const room = new Room("!room:t");
  room.addEvents([rootWithBundle(1, reply("$r1", 10)), reply("$r1", 10), reply("$r2", 20)]);
  assert.equal(room.threads.summary(ROOT).count, 2);
  room.addEvents([{ event_id: "$red", type: "m.room.redaction", sender: "@a:t", origin_server_ts: 30, content: { redacts: "$r2" } }]);
  assert.deepEqual([room.threads.summary(ROOT).count, room.threads.latestId(ROOT)], [1, "$r1"]);
});

test("counts read as people say them", () => {
  assert.equal(replyCountText(1), "1 reply");
  assert.equal(replyCountText(0), "0 replies");
  assert.equal(replyCountText(12), "12 replies");
});

test("the channel's receipt goes to its newest own event, never to a thread reply or an echo", () => {
  const timeline = [message("$a", 1), message(ROOT, 2), reply("$r1", 3), reply("$r2", 4)];
  assert.equal(lastMainEventId(timeline), ROOT);
  assert.equal(lastMainEventId([...timeline, message("~txn", 5)]), ROOT);
  assert.equal(lastMainEventId([...timeline, message("$b", 6)]), "$b");
  assert.equal(lastMainEventId([reply("$r1", 3)]), null);
});

test("each sync's per-thread unread counts replace the last, and mentions in them add up", () => {
  const index = new ThreadIndex();
  index.setUnread({ [ROOT]: { notification_count: 2, highlight_count: 1 }, $other: { notification_count: 1, highlight_count: 1 } });
  assert.deepEqual(index.unreadOf(ROOT), { notifications: 2, highlights: 1 });
  assert.equal(index.unreadHighlights(), 2);
  index.setUnread({ $other: { notification_count: 1, highlight_count: 0 } });
  assert.deepEqual(index.unreadOf(ROOT), { notifications: 0, highlights: 0 }, "left out: all read");
  assert.equal(index.unreadHighlights(), 0);
});

test("counts taken before this client's receipt do not bring a thread it read back; a newer reply does", () => {
  const index = new ThreadIndex();
  index.add(rootWithBundle(0, null));
  index.add(reply("$r1", 2));
  index.add(reply("$r2", 3));
  index.setUnread({ [ROOT]: { notification_count: 2, highlight_count: 0 } });
  index.markRead(ROOT, "$r2");
  assert.deepEqual(index.unreadOf(ROOT), { notifications: 0, highlights: 0 });
  // A sync computed before the receipt reached the server still counts both replies.
  index.setUnread({ [ROOT]: { notification_count: 2, highlight_count: 0 } });
  assert.deepEqual(index.unreadOf(ROOT), { notifications: 0, highlights: 0 });
  // A reply after the one read is unread again, as the server says.
  index.add(reply("$r3", 4));
  index.setUnread({ [ROOT]: { notification_count: 1, highlight_count: 1 } });
  assert.deepEqual(index.unreadOf(ROOT), { notifications: 1, highlights: 1 });
});

test("a room's mention count takes in the mentions waiting in its threads", async () => {
  const engine = new SyncEngine(/** @type {any} */ ({}), "@me:t");
  await engine._process({
    rooms: {
      join: {
        "!room:t": {
          timeline: { events: [message(ROOT, 1), reply("$r1", 2)] },
          unread_notifications: { notification_count: 1, highlight_count: 0 },
          unread_thread_notifications: { [ROOT]: { notification_count: 1, highlight_count: 1 } },
        },
      },
    },
  });
  const room = engine.room("!room:t");
  assert.deepEqual(room.unread, { notifications: 1, highlights: 1 });
  assert.deepEqual(room.threads.unreadOf(ROOT), { notifications: 1, highlights: 1 });
});
