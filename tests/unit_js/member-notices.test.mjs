// Membership events as people read them (web/static/js/member-notices.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { memberNotice, ownMembershipEvent, removalNotice } from "../../web/static/js/member-notices.js";

const ME = "@me:guilds.test";
const MOD = "@mod:guilds.test";

function member(stateKey, membership, { sender = stateKey, before, reason, name } = {}) {
  const content = { membership };
  if (reason !== undefined) content.reason = reason;
  if (name !== undefined) content.displayname = name;
  const event = { type: "m.room.member", state_key: stateKey, sender, content, event_id: "$e" };
  if (before !== undefined) event.unsigned = { prev_content: { membership: before, displayname: "Old Name" } };
  return event;
}

test("joins, leaves, kicks, bans and unbans each say one line", () => {
  assert.equal(memberNotice(member(ME, "join", { name: "Me" })), "Me joined.");
  assert.equal(memberNotice(member(ME, "leave", { before: "join" })), "Old Name left.");
  assert.equal(memberNotice(member(ME, "leave", { before: "join", sender: MOD, reason: "spam" })), "Old Name was kicked: spam");
  assert.equal(memberNotice(member(ME, "leave", { before: "join", sender: MOD })), "Old Name was kicked.");
  assert.equal(memberNotice(member(ME, "ban", { before: "join", sender: MOD, reason: " rude " })), "Old Name was banned: rude");
  assert.equal(memberNotice(member(ME, "leave", { before: "ban", sender: MOD })), "Old Name was unbanned.");
});

test("profile changes, invites and declined invites say nothing", () => {
  assert.equal(memberNotice(member(ME, "join", { before: "join", name: "New" })), null);
  assert.equal(memberNotice(member(ME, "invite", { sender: MOD })), null);
  assert.equal(memberNotice(member(ME, "leave", { before: "invite" })), null);
  assert.equal(memberNotice({ type: "m.room.message", content: {} }), null);
});

test("a name from the network is returned as it is, for the view to insert as text", () => {
  assert.equal(memberNotice(member(ME, "join", { name: "<img src=x onerror=alert(1)>" })), "<img src=x onerror=alert(1)> joined.");
  // Without any display name, the localpart.
  assert.equal(memberNotice(member(ME, "join")), "me joined.");
});

test("the removed member is told who removed them from where, with the reason", () => {
  assert.equal(removalNotice(member(ME, "leave", { before: "join", sender: MOD, reason: "too loud" }), ME, "Friends"), "You were removed from Friends: too loud");
  assert.equal(removalNotice(member(ME, "ban", { before: "join", sender: MOD }), ME, "Friends"), "You were banned from Friends.");
  // Leaving yourself, someone else's removal, or a declined invite is not a removal.
  assert.equal(removalNotice(member(ME, "leave", { before: "join" }), ME, "Friends"), null);
  assert.equal(removalNotice(member(MOD, "leave", { before: "join", sender: ME }), ME, "Friends"), null);
  assert.equal(removalNotice(member(ME, "leave", { before: "invite", sender: MOD }), ME, "Friends"), null);
});

test("the own membership event of a sync section is the timeline's last, else the state's", () => {
  const first = member(ME, "join");
  const last = member(ME, "ban", { sender: MOD });
  const other = member(MOD, "join");
  assert.equal(ownMembershipEvent({ timeline: { events: [first, last, other] } }, ME), last);
  assert.equal(ownMembershipEvent({ state: { events: [first] }, timeline: { events: [other] } }, ME), first);
  assert.equal(ownMembershipEvent({}, ME), null);
});
