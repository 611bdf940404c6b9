// What the call panel and the sidebar say about a channel's call, as pure functions of what they
// are given: the panel's title and status line, a peer's connection state, why a join failed,
// and the people listed under a channel (tests/unit_js/call-status.test.mjs).

import { CallError, MAX_PARTICIPANTS } from "../calls/group.js";

/** The channel kinds that hold a call. */
export const CALL_KINDS = new Set(["voice", "video"]);

const STATE_LABELS = {
  new: "Connecting…",
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Reconnecting…",
  failed: "Connection failed",
  closed: "Disconnected",
};

// A member whose transport Guilds cannot join (Element Call's SFU): present, never connecting.
export const FOREIGN_LABEL = "In the call from another app";

/**
 * A peer connection's state as a tile shows it (an unknown state as it is).
 * @param {string} state
 */
export function peerStateLabel(state) {
  return STATE_LABELS[state] ?? state;
}

/**
 * The panel's title: "Voice · lounge", "Video · standup".
 * @param {{kind: string, name: string}} channel
 */
export function callTitle(channel) {
  return `${channel.kind === "video" ? "Video" : "Voice"} · ${channel.name}`;
}

/**
 * The panel's status line. People, not devices, and oneself among them: two people in a call
 * are "2 in the call"; a person whose every device is still connecting counts as connecting.
 * @param {object} call
 * @param {string} call.selfUserId
 * @param {{userId: string, state: string}[]} call.peers  one per device
 * @param {number} [call.foreignCount]  members in the call from another app
 * @param {string|null} [call.problem]  the transport's trouble, when it has one
 */
export function callStatusText({ selfUserId, peers, foreignCount = 0, problem = null }) {
  const here = new Set([selfUserId, ...peers.filter((p) => p.state === "connected").map((p) => p.userId)]);
  const connecting = new Set(peers.map((p) => p.userId).filter((u) => !here.has(u)));
  return (
    (peers.length === 0 ? "Only you are here" : `${here.size} in the call`) +
    (connecting.size ? ` · ${connecting.size} connecting` : "") +
    (foreignCount ? ` · ${foreignCount} in another app` : "") +
    (problem ? ` · ${problem}` : "")
  );
}

/**
 * What the panel says when joining a channel's call failed.
 * @param {unknown} error
 * @param {string} channelName
 * @param {(error: unknown) => string} describe  for errors that are not the call's own
 */
export function joinErrorText(error, channelName, describe) {
  if (error instanceof CallError && error.code === "full") return `${channelName} is full: a call holds ${MAX_PARTICIPANTS} people.`;
  if (error instanceof CallError) return error.message;
  return `Could not join the call in ${channelName}: ${describe(error)}`;
}

/**
 * The people to list under a channel, from its call's memberships (one per device): each person
 * once, in the order of their first device, and `foreign` when every device of theirs is in the
 * call from another app.
 * @param {{userId: string, foreign?: boolean}[]} members
 * @returns {{userId: string, foreign: boolean}[]}
 */
export function callPeople(members) {
  const people = new Map();
  for (const member of members) {
    const foreign = Boolean(member.foreign);
    people.set(member.userId, people.has(member.userId) ? people.get(member.userId) && foreign : foreign);
  }
  return [...people].map(([userId, foreign]) => ({ userId, foreign }));
}
