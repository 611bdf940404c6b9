// Message search (web/static/js/search.js): the /search request, its answer read into hits,
// and the matched words cut out of a message, safely, for highlighting.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_QUERY_LENGTH,
  highlightSegments,
  highlightTerms,
  normalizeQuery,
  readSearchAnswer,
  searchRequest,
} from "../../web/static/js/search.js";

const joined = (pieces) => pieces.map((p) => p.text).join("");
const hits = (pieces) => pieces.filter((p) => p.hit).map((p) => p.text);

test("the request searches message bodies in the rooms given, newest first", () => {
  const body = searchRequest({ term: "deploy friday", roomIds: ["!a:hs", "!b:hs"] });
  const events = body.search_categories.room_events;
  assert.equal(events.search_term, "deploy friday");
  assert.deepEqual(events.keys, ["content.body"]);
  assert.deepEqual(events.filter, { rooms: ["!a:hs", "!b:hs"] });
  assert.equal(events.order_by, "recent");
  assert.equal(events.event_context.include_profile, true);
});

test("a query is trimmed, its spaces made one, and cut to the limit", () => {
  assert.equal(normalizeQuery("  deploy \n  friday  "), "deploy friday");
  assert.equal(normalizeQuery(null), "");
  assert.equal(normalizeQuery("x".repeat(MAX_QUERY_LENGTH + 50)).length, MAX_QUERY_LENGTH);
});

test("an answer becomes hits, with the batch to page on and the server's count", () => {
  const answer = {
    search_categories: {
      room_events: {
        count: 3,
        highlights: ["deploy", 7],
        next_batch: "b1",
        results: [
          {
            rank: 1,
            result: { event_id: "$new", room_id: "!a", sender: "@bob:hs", origin_server_ts: 20, content: { msgtype: "m.text", body: "deploy now" } },
            context: { profile_info: { "@bob:hs": { displayname: "Bob" } } },
          },
          // An edit is found by its new words; the hit opens the message it edits, once.
          {
            rank: 1,
            result: {
              event_id: "$edit",
              room_id: "!a",
              sender: "@amy:hs",
              origin_server_ts: 15,
              content: { body: "* deploy later", "m.new_content": { body: "deploy later" }, "m.relates_to": { rel_type: "m.replace", event_id: "$orig" } },
            },
          },
          { rank: 1, result: { event_id: "$orig", room_id: "!a", sender: "@amy:hs", origin_server_ts: 10, content: { body: "deploy soon" } } },
          // A reply shows its own words, not the quote of what it answers.
          {
            rank: 1,
            result: {
              event_id: "$reply",
              room_id: "!b",
              sender: "@amy:hs",
              origin_server_ts: 5,
              content: { body: "> <@bob:hs> deploy now\n\nnot before lunch", "m.relates_to": { "m.in_reply_to": { event_id: "$new" } } },
            },
          },
          // Events without text, or not events at all, are left out.
          { rank: 1, result: { event_id: "$img", room_id: "!a", sender: "@amy:hs", content: {} } },
          { rank: 1 },
        ],
      },
    },
  };
  const read = readSearchAnswer(answer);
  assert.equal(read.nextBatch, "b1");
  assert.equal(read.count, 3);
  assert.deepEqual(read.highlights, ["deploy"]);
  assert.deepEqual(
    read.hits.map((h) => [h.eventId, h.body, h.displayName]),
    [
      ["$new", "deploy now", "Bob"],
      ["$orig", "deploy later", null],
      ["$reply", "not before lunch", null],
    ],
  );
  assert.deepEqual(readSearchAnswer({}), { hits: [], nextBatch: null, count: null, highlights: [] });
});

test("a thread reply's hit names its thread, to be opened in it; other hits name none", () => {
  const inThread = { event_id: "$t1", room_id: "!a", sender: "@bob:hs", content: { body: "deploy", "m.relates_to": { rel_type: "m.thread", event_id: "$root", is_falling_back: true, "m.in_reply_to": { event_id: "$root" } } } };
  const plain = { event_id: "$p1", room_id: "!a", sender: "@bob:hs", content: { body: "deploy too" } };
  const read = readSearchAnswer({ search_categories: { room_events: { results: [{ result: inThread }, { result: plain }] } } });
  assert.deepEqual(
    read.hits.map((h) => [h.eventId, h.threadId, h.body]),
    [
      ["$t1", "$root", "deploy"],
      ["$p1", null, "deploy too"],
    ],
  );
});

test("terms are the query's words and the server's, once each, longest first", () => {
  assert.deepEqual(highlightTerms("Hell hello, HELL!", ["world"]), ["hello", "world", "hell"]);
  assert.deepEqual(highlightTerms("  ", []), []);
  assert.deepEqual(highlightTerms("ça marche", []), ["marche", "ça"]);
});

test("segments mark every match, ignoring case, and join back to the text", () => {
  const text = "Hello there, hello again; Othello";
  const pieces = highlightSegments(text, ["hello"]);
  assert.equal(joined(pieces), text);
  assert.deepEqual(hits(pieces), ["Hello", "hello", "hello"]);
  // The longer term wins where both match.
  assert.deepEqual(hits(highlightSegments("deployment deploy", ["deployment", "deploy"])), ["deployment", "deploy"]);
  assert.deepEqual(highlightSegments("", ["x"]), []);
  assert.deepEqual(highlightSegments("no terms", []), [{ text: "no terms", hit: false }]);
});

test("markup and regex characters are text: matched as typed, never interpreted", () => {
  const text = '<img src=x onerror="alert(1)"> costs $5.00 (a+b)*c [x] \\d';
  for (const term of ["<img", "$5.00", "(a+b)*c", "[x]", "\\d", ".", "*", "onerror=\"alert(1)\""]) {
    const pieces = highlightSegments(text, [term]);
    assert.equal(joined(pieces), text, term);
    assert.ok(hits(pieces).length >= 1, term);
    for (const hit of hits(pieces)) assert.equal(hit.toLowerCase(), term.toLowerCase(), term);
  }
  // A term with a dot matches a dot only, not any character.
  assert.deepEqual(hits(highlightSegments("a.c abc", ["a.c"])), ["a.c"]);
  // Pieces are plain strings: the view makes text nodes of them, so "<img" stays "<img".
  assert.ok(highlightSegments(text, ["img"]).every((p) => typeof p.text === "string"));
});
