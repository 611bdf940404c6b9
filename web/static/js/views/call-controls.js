// The call panel's buttons: mute, deafen, camera, screen share (video channels only) and leave,
// each pressed or not, labelled and iconed as the call is.

import { h } from "../dom.js";
import { icon, setIcon } from "../icons.js";

/**
 * @param {object} actions  what each button does
 * @param {() => void} actions.onMute
 * @param {() => void} actions.onDeafen
 * @param {() => void} actions.onCamera
 * @param {() => void} actions.onScreen
 * @param {() => void} actions.onLeave
 */
export function createCallControls({ onMute, onDeafen, onCamera, onScreen, onLeave }) {
  const muteButton = control("call-mute", "mic", "Mute", onMute);
  const deafenButton = control("call-deafen", "headphones", "Deafen", onDeafen);
  const cameraButton = control("call-camera", "video-off", "Turn camera on", onCamera);
  const screenButton = control("call-screen", "monitor-up", "Share your screen", onScreen);
  const leaveButton = control("call-leave", "phone-off", "Leave the call", onLeave);
  leaveButton.classList.add("danger");
  const el = h("div", { class: "call-controls" }, muteButton, deafenButton, cameraButton, screenButton, leaveButton);

  /**
   * Show the call's state on the buttons.
   * @param {import("../calls/group.js").GroupCall} call
   */
  function render(call) {
    const video = call.kind === "video";
    press(muteButton, call.muted, call.muted ? "Unmute" : "Mute", call.muted ? "mic-off" : "mic");
    press(deafenButton, call.deafened, call.deafened ? "Undeafen" : "Deafen", call.deafened ? "headphone-off" : "headphones");
    cameraButton.hidden = !video;
    screenButton.hidden = !video;
    cameraButton.disabled = !call.canVideo;
    screenButton.disabled = !call.canVideo || !navigator.mediaDevices?.getDisplayMedia;
    press(cameraButton, Boolean(call.cameraTrack), call.cameraTrack ? "Turn camera off" : "Turn camera on", call.cameraTrack ? "video" : "video-off");
    press(screenButton, Boolean(call.screenTrack), call.screenTrack ? "Stop sharing" : "Share your screen");
    if (!call.canVideo && video) cameraButton.title = "You need the video permission";
  }

  return { el, render };
}

function control(testid, name, label, onclick) {
  return h("button", {
    type: "button",
    class: "call-control",
    "data-testid": testid,
    title: label,
    "aria-label": label,
    "aria-pressed": "false",
    onclick,
  }, icon(name));
}

function press(button, on, label, iconName = null) {
  if (iconName) setIcon(button, iconName);
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.classList.toggle("on", on);
  button.title = label;
  button.setAttribute("aria-label", label);
}
