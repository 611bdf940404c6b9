// The 1:1 call's panel (views/direct-call.js): the other person's video and ours, the status
// line, what the other side says of its microphone and camera, mute, camera and hang up, and
// close once the call ended. Its words are direct-call-text.js.

import { h } from "../dom.js";
import { icon, setIcon } from "../icons.js";
import { SOUND_BLOCKED_TEXT, createPlayback } from "./call-media.js";
import { remoteStateOf, statusText } from "./direct-call-text.js";

function hasVideo(call) {
  return (call.localStream?.getVideoTracks().length ?? 0) > 0;
}

/**
 * The panel of one call; `render` shows its state now.
 * @param {import("../calls/direct.js").DirectCall} call
 * @param {object} options
 * @param {(call: any) => string} options.nameOf  the other person's name
 * @param {() => void} options.onClose  the close button (shown once the call ended)
 */
export function createDirectCallPanel(call, { nameOf, onClose }) {
  const remoteVideo = /** @type {HTMLVideoElement} */ (h("video", { class: "call-remote-video", "data-testid": "direct-call-remote-video", autoplay: true, playsinline: true }));
  const localVideo = /** @type {HTMLVideoElement} */ (h("video", { class: "call-local-video", "data-testid": "direct-call-local-video", autoplay: true, playsinline: true }));
  localVideo.muted = true;
  const status = h("span", { class: "call-status", role: "status", "data-testid": "direct-call-status" });
  // What the other side says of its microphone and camera (their stream metadata).
  const remoteState = h("span", { class: "call-remote-state muted", "data-testid": "direct-call-remote-state" });
  const mute = h("button", { type: "button", class: "icon-button call-button", "data-testid": "direct-call-mute", onclick: () => call.setAudioMuted(!call.audioMuted) });
  const camera = h("button", {
    type: "button",
    class: "icon-button call-button",
    "data-testid": "direct-call-camera",
    onclick: () => call.setVideoMuted(!(call.videoMuted || !hasVideo(call))).catch((error) => console.warn("camera failed", error)),
  });
  const hangup = h("button", {
    type: "button",
    class: "icon-button call-button danger",
    "data-testid": "direct-call-hangup",
    title: "Hang up",
    "aria-label": "Hang up",
    onclick: () => call.hangup(),
  }, icon("phone-off"));
  const close = h("button", { type: "button", class: "icon-button", "data-testid": "direct-call-close", title: "Close", "aria-label": "Close", onclick: onClose }, icon("x"));
  // The other side's sound plays from their video element; a browser may hold it back until
  // the person interacts with the page (a caller whose click is long past when they answer).
  const playback = createPlayback({ active: () => !call.ended, sounds: () => [remoteVideo], onChange: () => render() });
  const soundButton = h("button", {
    type: "button",
    class: "button call-sound-blocked",
    "data-testid": "call-sound-blocked",
    text: SOUND_BLOCKED_TEXT,
    onclick: () => playback.unblock(),
  });
  const root = h(
    "section",
    { class: "direct-call card", "data-testid": "direct-call-panel", "aria-label": `Call with ${nameOf(call)}` },
    h("header", { class: "direct-call-header" }, h("strong", { "data-testid": "direct-call-peer", text: nameOf(call) }), status, remoteState, close),
    soundButton,
    h("div", { class: "call-videos" }, remoteVideo, localVideo),
    h("footer", { class: "call-controls" }, mute, camera, hangup),
  );

  function render() {
    root.dataset.state = call.state;
    root.dataset.callId = call.callId;
    root.dataset.roomId = call.roomId;
    root.dataset.direction = call.direction;
    root.dataset.endReason = call.endReason ?? "";
    root.classList.toggle("voice-only", !call.video);
    status.textContent = statusText(call, nameOf(call));
    const theirs = remoteStateOf(call, nameOf(call));
    remoteState.dataset.audioMuted = String(theirs.audioMuted);
    remoteState.dataset.videoMuted = String(theirs.videoMuted);
    remoteState.textContent = theirs.text;
    playback.attach(remoteVideo, call.ended ? [] : (call.remoteStream?.getTracks() ?? []));
    playback.attach(localVideo, call.ended ? [] : (call.localStream?.getTracks() ?? []));
    if (call.ended) playback.reset();
    soundButton.hidden = call.ended || !playback.blocked;
    setIcon(mute, call.audioMuted ? "mic-off" : "mic");
    mute.title = call.audioMuted ? "Unmute" : "Mute";
    mute.setAttribute("aria-label", mute.title);
    mute.setAttribute("aria-pressed", String(call.audioMuted));
    const cameraOn = hasVideo(call) && !call.videoMuted;
    setIcon(camera, cameraOn ? "video" : "video-off");
    camera.title = cameraOn ? "Turn the camera off" : "Turn the camera on";
    camera.setAttribute("aria-label", camera.title);
    camera.setAttribute("aria-pressed", String(cameraOn));
    for (const button of [mute, camera, hangup]) button.disabled = call.ended;
    close.hidden = !call.ended;
  }

  return {
    call,
    root,
    render,
    /** The panel is gone: stop listening for the clicks that would play held-back sound. */
    destroy() {
      playback.destroy();
    },
    /** The status line alone (the clock runs every second). */
    renderStatus() {
      status.textContent = statusText(call, nameOf(call));
    },
  };
}
