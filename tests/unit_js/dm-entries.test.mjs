import assert from "node:assert/strict";
import { test } from "node:test";

import { byActivity, createProfiles, dmAvatar, dmName, lastActive } from "../../web/static/js/views/dm-entries.js";

/** A room as dmName and dmAvatar read it: members' display names and avatars. */
function room(members) {
  return {
    member: (uid) => (uid in members ? { content: { displayname: members[uid].name } } : null),
    avatarOf: (uid) => members[uid]?.avatar ?? null,
  };
}

const noProfile = () => {
  throw new Error("the profile was asked for");
};

test("a partner's name: the room's first, and then no profile is asked for", () => {
  assert.equal(dmName("@ann:x", { room: room({ "@ann:x": { name: "Ann" } }), profile: noProfile }), "Ann");
});

test("a partner's name: the invitation's stripped state before the profile", () => {
  const inviteState = [
    { type: "m.room.name", state_key: "", content: { name: "chat" } },
    { type: "m.room.member", state_key: "@ann:x", content: { displayname: "Ann (invited)" } },
  ];
  assert.equal(dmName("@ann:x", { inviteState, profile: noProfile }), "Ann (invited)");
});

test("a partner's name: the profile, else the localpart; empty names do not count", () => {
  assert.equal(dmName("@ann:x", { room: room({ "@ann:x": { name: "" } }), profile: () => ({ displayname: "Ann P" }) }), "Ann P");
  assert.equal(dmName("@ann:x", { profile: () => ({}) }), "ann");
});

test("a partner's avatar: the room's, else an mxc:// of the profile, else none", () => {
  assert.equal(dmAvatar("@ann:x", { room: room({ "@ann:x": { avatar: "mxc://x/a" } }), profile: noProfile }), "mxc://x/a");
  assert.equal(dmAvatar("@ann:x", { profile: () => ({ avatar_url: "mxc://x/p" }) }), "mxc://x/p");
  assert.equal(dmAvatar("@ann:x", { profile: () => ({ avatar_url: "https://evil.example/a.png" }) }), null);
  assert.equal(dmAvatar("@ann:x", { profile: () => ({}) }), null);
});

test("a room was last active at its newest event with a timestamp", () => {
  assert.equal(lastActive({ timeline: [{ origin_server_ts: 5 }, { origin_server_ts: 9 }, {}] }), 9);
  assert.equal(lastActive({ timeline: [] }), 0);
});

test("the list: invitations first, then the most recent, ties by name", () => {
  const list = [
    { name: "old", lastActive: 1 },
    { name: "bea", lastActive: 7 },
    { name: "invite", lastActive: Infinity },
    { name: "amy", lastActive: 7 },
  ];
  assert.deepEqual(
    list.sort(byActivity).map((e) => e.name),
    ["invite", "amy", "bea", "old"],
  );
});

test("profiles are asked for once, and a change is told when the answer arrives", async () => {
  const asked = [];
  let changes = 0;
  let answer;
  const arrived = new Promise((resolve) => (answer = resolve));
  const client = {
    getProfile: (uid) => {
      asked.push(uid);
      return arrived;
    },
  };
  const profiles = createProfiles(client, () => (changes += 1));
  assert.deepEqual(profiles.get("@ann:x"), {});
  assert.deepEqual(profiles.get("@ann:x"), {});
  assert.deepEqual(asked, ["@ann:x"]);
  answer({ displayname: "Ann" });
  await arrived;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(changes, 1);
  assert.deepEqual(profiles.get("@ann:x"), { displayname: "Ann" });
  assert.deepEqual(asked, ["@ann:x"]);
});

test("a profile that cannot be read counts as empty, and is not asked for again", async () => {
  let asked = 0;
  const profiles = createProfiles({ getProfile: () => (asked++, Promise.reject(new Error("404"))) }, () => {});
  profiles.get("@bob:x");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(profiles.get("@bob:x"), {});
  assert.equal(asked, 1);
});
