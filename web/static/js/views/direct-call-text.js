// What the 1:1 call panel says (views/direct-call.js), as pure functions of the call's state:
// its status line (with the running clock), how it ended, and what the other side says of its
// microphone and camera (tests/unit_js/direct-call-text.test.mjs).

/**
 * A duration as a clock: "0:07", "12:30".
 * @param {number} ms
 */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * @typedef {object} CallState  what these read of a calls/direct.js DirectCall
 * @property {string} state
 * @property {string | null} [endReason]
 * @property {"local"|"remote"|null} [endedBy]
 * @property {"inbound"|"outbound"} [direction]
 * @property {number} [connectedAt]
 * @property {boolean} [everConnected]  connected once (then "connecting" is a reconnection)
 */

/**
 * The panel's status line.
 * @param {CallState} call
 * @param {string} name  the other person's
 * @param {number} [now]
 */
export function statusText(call, name, now = Date.now()) {
  switch (call.state) {
    case "preparing":
      return "Starting the call…";
    case "inviting":
      return `Calling ${name}…`;
    case "answering":
      return "Connecting…";
    case "connecting":
      // Connected once, then lost: ICE restarts (calls/ice-recovery.js) until it is back.
      return call.everConnected ? "Reconnecting…" : "Connecting…";
    case "connected":
      return `Connected · ${clock(now - call.connectedAt)}`;
    case "ended":
      return endedText(call);
    default:
      return "";
  }
}

/**
 * How the call ended (the other person's name is beside it, in the panel's header).
 * @param {CallState} call
 */
export function endedText(call) {
  switch (call.endReason) {
    case "rejected":
      return call.endedBy === "remote" ? "They declined the call" : "You declined the call";
    case "invite_timeout":
      return call.direction === "outbound" ? "No answer" : "Missed call";
    case "missed":
      return "Missed call";
    case "answered_elsewhere":
      return "Answered on another device";
    case "rejected_elsewhere":
      return "Declined on another device";
    // Both only after the ICE restarts of calls/ice-recovery.js failed too.
    case "ice_failed":
      return "Could not connect: the network between you blocks the call (the homeserver may need TURN)";
    case "ice_timeout":
      return "The connection was lost and could not be restored";
    case "user_media_failed":
      return call.endedBy === "local" ? "No access to a camera or microphone" : "They have no working camera or microphone";
    case "user_busy":
      return "They are busy";
    case "user_hangup":
      return call.endedBy === "remote" ? "They ended the call" : "Call ended";
    default:
      return "Call ended";
  }
}

/**
 * What the other side says of its microphone and camera (their stream metadata): nothing once
 * the call ended, and no camera note in a voice call.
 * @param {{ended: boolean, video: boolean, remoteMuted: {audio: boolean, video: boolean}}} call
 * @param {string} name  the other person's
 * @returns {{audioMuted: boolean, videoMuted: boolean, text: string}}
 */
export function remoteStateOf(call, name) {
  const theirs = call.ended ? { audio: false, video: false } : call.remoteMuted;
  const videoMuted = theirs.video && call.video;
  return {
    audioMuted: theirs.audio,
    videoMuted,
    text: [theirs.audio ? `${name} is muted` : "", videoMuted ? "camera off" : ""].filter(Boolean).join(" · "),
  };
}
