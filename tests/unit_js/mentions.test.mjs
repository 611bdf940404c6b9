// Mentions (web/static/js/mentions.js): what a sent message carries in m.mentions and its pills,
// whether a received one mentions me, the autocomplete's query and candidates; and the mute and
// presence decisions (notifications.js, presence.js) read from what the homeserver says.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_ROLE_HOLDERS,
  containsWord,
  mayMentionRoom,
  mentionCandidates,
  mentionContent,
  mentionQuery,
  mentionsUser,
  pickOf,
  userIdFromLink,
} from "../../web/static/js/mentions.js";
import { isMutedBy, muteRule, roomsToMute } from "../../web/static/js/notifications.js";
import { presenceEnabled, presenceState } from "../../web/static/js/presence.js";

const ALICE = "@alice:hs.test";
const BOB = "@bob:hs.test";

test("a picked member becomes m.mentions.user_ids and a matrix.to pill", () => {
  const content = mentionContent("hi @Bob Smith, look", {
    picks: [{ kind: "user", text: "@Bob Smith", userId: BOB }],
    sender: ALICE,
  });
  assert.deepEqual(content["m.mentions"], { user_ids: [BOB] });
  assert.equal(content.body, "hi @Bob Smith, look");
  assert.equal(content.format, "org.matrix.custom.html");
  assert.equal(content.formatted_body, 'hi <a href="https://matrix.to/#/@bob:hs.test">@Bob Smith</a>, look');
});

test("every message carries m.mentions, empty when it mentions no one", () => {
  assert.deepEqual(mentionContent("Bob is here, plain words", { sender: ALICE }), {
    msgtype: "m.text",
    body: "Bob is here, plain words",
    "m.mentions": {},
  });
});

test("a pick whose text was deleted before sending mentions no one", () => {
  const content = mentionContent("never mind", { picks: [{ kind: "user", text: "@Bob", userId: BOB }], sender: ALICE });
  assert.deepEqual(content["m.mentions"], {});
  assert.equal(content.formatted_body, undefined);
});

test("a longer name is not taken for a shorter one, nor a name inside a word", () => {
  const content = mentionContent("@Al and @Alice and x@Al", {
    picks: [
      { kind: "user", text: "@Al", userId: "@al:hs.test" },
      { kind: "user", text: "@Alice", userId: ALICE },
    ],
    sender: BOB,
  });
  assert.deepEqual(content["m.mentions"].user_ids, ["@al:hs.test", ALICE]);
  assert.equal(
    content.formatted_body,
    '<a href="https://matrix.to/#/@al:hs.test">@Al</a> and <a href="https://matrix.to/#/@alice:hs.test">@Alice</a> and x@Al',
  );
});

test("pills keep markdown around them and never go inside code; names are escaped", () => {
  const content = mentionContent("**@<Bob>** `@<Bob>`", {
    picks: [{ kind: "user", text: "@<Bob>", userId: BOB }],
    sender: ALICE,
  });
  assert.equal(
    content.formatted_body,
    '<strong><a href="https://matrix.to/#/@bob:hs.test">@&#60;Bob&#62;</a></strong> <code>@&#60;Bob&#62;</code>',
  );
});

test("a reply mentions the sender of the message replied to, unless that is oneself", () => {
  assert.deepEqual(mentionContent("agreed", { replyTo: BOB, sender: ALICE })["m.mentions"], { user_ids: [BOB] });
  assert.deepEqual(mentionContent("agreed", { replyTo: ALICE, sender: ALICE })["m.mentions"], {});
});

test("a user id typed in full mentions a known member, not a stranger", () => {
  const content = mentionContent("ping @bob:hs.test and @eve:elsewhere.test", { knownUsers: new Set([BOB]), sender: ALICE });
  assert.deepEqual(content["m.mentions"], { user_ids: [BOB] });
  assert.match(content.formatted_body, /<a href="https:\/\/matrix.to\/#\/@bob:hs.test">@bob:hs.test<\/a>/);
});

test("a role mention lists its holders (not the sender) and names the role for Guilds", () => {
  const content = mentionContent("@Mods please", {
    picks: [{ kind: "role", text: "@Mods", roleId: "mods", holders: [BOB, ALICE, "@carol:hs.test"] }],
    sender: ALICE,
  });
  assert.deepEqual(content["m.mentions"], { user_ids: ["@bob:hs.test", "@carol:hs.test"] });
  assert.deepEqual(content["chat.guilds.role_mentions"], ["mods"]);
  assert.equal(content.formatted_body, undefined, "other clients see the text @Mods");
});

test("a role with more holders than fit an event is not expanded", () => {
  const holders = Array.from({ length: MAX_ROLE_HOLDERS + 1 }, (_, i) => `@u${i}:hs.test`);
  const content = mentionContent("@Everyone", { picks: [{ kind: "role", text: "@Everyone", roleId: "big", holders }], sender: ALICE });
  assert.deepEqual(content["m.mentions"], {});
  assert.equal(content["chat.guilds.role_mentions"], undefined);
});

test("@room is m.mentions.room only for those allowed", () => {
  assert.deepEqual(mentionContent("@room meeting now", { mayMentionRoom: true, sender: ALICE })["m.mentions"], { room: true });
  assert.deepEqual(mentionContent("@room meeting now", { mayMentionRoom: false, sender: ALICE })["m.mentions"], {});
  assert.deepEqual(mentionContent("@roommate", { mayMentionRoom: true, sender: ALICE })["m.mentions"], {});
});

test("received: m.mentions decides when present, the legacy body rules when not", () => {
  const me = { userId: BOB, displayName: "Bob Smith" };
  const from = (content) => ({ sender: ALICE, content });
  assert.equal(mentionsUser(from({ body: "x", "m.mentions": { user_ids: [BOB] } }), me), true);
  // With m.mentions, a name in the text is no mention (the sender did not pick it).
  assert.equal(mentionsUser(from({ body: "Bob Smith wrote", "m.mentions": {} }), me), false);
  assert.equal(mentionsUser(from({ body: "hey Bob Smith!" }), me), true);
  assert.equal(mentionsUser(from({ body: "hey bob" }), me), true, "the localpart");
  assert.equal(mentionsUser(from({ body: "bobsled" }), me), false);
  assert.equal(mentionsUser(from({ body: "all", "m.mentions": { room: true } }), { ...me, senderMayMentionRoom: true }), true);
  assert.equal(mentionsUser(from({ body: "all", "m.mentions": { room: true } }), { ...me, senderMayMentionRoom: false }), false);
  assert.equal(mentionsUser({ sender: BOB, content: { body: "me", "m.mentions": { user_ids: [BOB] } } }, me), false, "never my own");
});

test("containsWord matches whole words, case-insensitively, with punctuation around", () => {
  assert.equal(containsWord("(Hi, @ALICE!)", "@alice"), true);
  assert.equal(containsWord("@alicea", "@alice"), false);
  assert.equal(containsWord("é@alice", "@alice"), false, "a letter before it, in any script");
});

test("matrix.to links: user ids read back, encoded or not; rooms and others ignored", () => {
  assert.equal(userIdFromLink("https://matrix.to/#/@bob:hs.test"), BOB);
  assert.equal(userIdFromLink("https://matrix.to/#/%40bob%3Ahs.test"), BOB);
  assert.equal(userIdFromLink("https://matrix.to/#/!room:hs.test"), null);
  assert.equal(userIdFromLink("https://example.org/#/@bob:hs.test"), null);
});

test("@room needs the room's notifications.room power; v12 creators have all power", () => {
  const room = (levels, create = { sender: "@owner:hs.test", content: { room_version: "12" } }) => ({
    getState: (type) => (type === "m.room.power_levels" ? (levels ? { content: levels } : null) : type === "m.room.create" ? create : null),
  });
  const levels = { users: { [ALICE]: 50 }, users_default: 0, notifications: { room: 50 } };
  assert.equal(mayMentionRoom(room(levels), ALICE), true);
  assert.equal(mayMentionRoom(room(levels), BOB), false);
  assert.equal(mayMentionRoom(room({ ...levels, notifications: { room: 100 } }), ALICE), false);
  assert.equal(mayMentionRoom(room({ users: {} }), BOB), false, "50 when unset");
  assert.equal(mayMentionRoom(room(levels), "@owner:hs.test"), true);
  assert.equal(mayMentionRoom(room(levels, { sender: "@owner:hs.test", content: { room_version: "10" } }), "@owner:hs.test"), false);
});

test("the query is the @word the cursor ends, at a word's start only", () => {
  assert.deepEqual(mentionQuery("hello @bo", 9), { start: 6, query: "bo" });
  assert.deepEqual(mentionQuery("@", 1), { start: 0, query: "" });
  assert.equal(mentionQuery("mail a@bo", 9), null);
  assert.equal(mentionQuery("@bob done", 9), null);
});

test("candidates: members by name or id, roles with holders, @room only when allowed", () => {
  const sources = {
    members: [
      { userId: BOB, name: "Bob Smith" },
      { userId: "@robert:hs.test", name: "Rob" },
    ],
    roles: [
      { roleId: "mods", name: "Moderators", holders: [BOB] },
      { roleId: "empty", name: "Bobcats", holders: [] },
    ],
    mayMentionRoom: false,
  };
  assert.deepEqual(mentionCandidates("bo", sources).map((c) => c.label), ["Bob Smith"]);
  assert.deepEqual(mentionCandidates("rob", sources).map((c) => c.label), ["Rob"]);
  assert.deepEqual(mentionCandidates("smi", sources).map((c) => c.label), ["Bob Smith"]);
  assert.deepEqual(mentionCandidates("mod", sources).map((c) => c.kind), ["role"]);
  assert.deepEqual(mentionCandidates("ro", sources).map((c) => c.kind), ["user"]);
  assert.deepEqual(mentionCandidates("ro", { ...sources, mayMentionRoom: true }).map((c) => c.kind), ["user", "room"]);
  const [room] = mentionCandidates("room", { ...sources, mayMentionRoom: true });
  assert.deepEqual(pickOf(room), { kind: "room", text: "@room" });
  assert.deepEqual(pickOf(mentionCandidates("mod", sources)[0]), { kind: "role", text: "@Moderators", roleId: "mods", holders: [BOB] });
});

test("mute: Element's override rule of the room id, with no actions, and nothing else", () => {
  const rules = (override) => ({ global: { override } });
  assert.deepEqual(muteRule("!a:hs"), { conditions: [{ kind: "event_match", key: "room_id", pattern: "!a:hs" }], actions: [] });
  assert.equal(isMutedBy(rules([{ rule_id: "!a:hs", enabled: true, actions: [] }]), "!a:hs"), true);
  assert.equal(isMutedBy(rules([{ rule_id: "!a:hs", enabled: true, actions: ["dont_notify"] }]), "!a:hs"), true);
  assert.equal(isMutedBy(rules([{ rule_id: "!a:hs", enabled: false, actions: [] }]), "!a:hs"), false);
  assert.equal(isMutedBy(rules([{ rule_id: "!a:hs", enabled: true, actions: ["notify"] }]), "!a:hs"), false);
  assert.equal(isMutedBy(rules([{ rule_id: ".m.rule.master", enabled: false, actions: [] }]), "!a:hs"), false);
  assert.equal(isMutedBy(undefined, "!a:hs"), false);
});

test("a muted server's new channels are muted once; one unmuted on its own is left alone", () => {
  const marker = { servers: { "!s": ["!s", "!c1", "!c2"] } };
  assert.deepEqual(roomsToMute(marker, "!s", ["!s", "!c1", "!c2", "!c3"]), ["!c3"]);
  assert.deepEqual(roomsToMute(marker, "!s", ["!s", "!c1"]), []);
  assert.deepEqual(roomsToMute(marker, "!other", ["!x"]), [], "a server not muted");
});

test("presence: the homeserver's own-status answer tells whether presence is on", () => {
  assert.equal(presenceEnabled({ presence: "online", currently_active: true }), true);
  assert.equal(presenceEnabled({ presence: "offline" }), false, "Synapse with presence disabled");
  assert.equal(presenceEnabled(null), false);
  assert.equal(presenceState({ presence: "unavailable" }), "unavailable");
  assert.equal(presenceState({ presence: "busy?" }), "offline");
  assert.equal(presenceState(undefined), "offline");
});
