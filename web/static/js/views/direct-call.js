// The 1:1 call UI: voice / video buttons in a DM's header, the incoming-call card (accept or
// decline), and the call panel (video tiles, mute, camera, hang up) floating over the shell, so
// a call goes on while the person reads other channels. The call logic is calls/direct.js.

import { DirectCalls } from "../calls/direct.js";
import { h } from "../dom.js";
import { icon, setIcon } from "../icons.js";

// How long the panel keeps saying how a call ended before it closes on its own.
const ENDED_SHOWN_MS = 8_000;

let stylesheetAdded = false;
function addStylesheet() {
  if (stylesheetAdded) return;
  stylesheetAdded = true;
  document.head.append(h("link", { rel: "stylesheet", href: "/static/css/direct-call.css" }));
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The signed-in client's calls (tests and the console reach them with import()). */
export let current = null;
let currentButtons = null;

// The DM header's voice and video buttons, for whichever client is signed in now (views/dms.js
// builds the header; without it there is no DM to call from).
import("./dms.js")
  .then((dms) => dms.registerDmHeaderAction(({ roomId }) => currentButtons?.(roomId) ?? null))
  .catch((error) => console.warn("no DM view: 1:1 calls have no buttons", error));

/**
 * Start the 1:1 calls of this signed-in client: listens to the sync engine's timeline batches.
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.userId
 * @returns {{el: HTMLElement, calls: DirectCalls, callButtons: (roomId: string) => HTMLElement}}
 */
export function mountDirectCalls({ client, sync, userId }) {
  addStylesheet();
  const calls = new DirectCalls({ client, sync, userId });
  current = calls;
  sync.addEventListener("timeline", (event) => calls.handleBatch(/** @type {CustomEvent} */ (event).detail));
  sync.addEventListener("update", (event) => /** @type {CustomEvent} */ (event).detail.membership && calls.checkRooms());

  const incomingSlot = h("div", { class: "incoming-calls" });
  const panelSlot = h("div", { class: "direct-call-slot" });
  const el = h("div", { class: "direct-call-layer", "data-testid": "direct-call-layer" }, incomingSlot, panelSlot);

  /** @type {import("../calls/direct.js").DirectCall|null} */
  let shown = null;
  let panel = null;
  let tick = null;
  let closeTimer = null;

  const nameOf = (call) => sync.room(call.roomId)?.displayName(call.opponentUserId) ?? call.opponentUserId;

  // --- incoming --------------------------------------------------------------------------------
  function renderIncoming() {
    const ringing = [...calls.calls.values()].filter((c) => c.state === "ringing");
    incomingSlot.replaceChildren(
      ...ringing.map((call) =>
        h(
          "section",
          {
            class: "incoming-call card",
            role: "alertdialog",
            "aria-label": `Incoming call from ${nameOf(call)}`,
            "data-testid": "incoming-call",
            "data-call-id": call.callId,
            "data-room-id": call.roomId,
          },
          h("div", { class: "incoming-call-text" },
            h("strong", { "data-testid": "incoming-call-name", text: nameOf(call) }),
            h("span", { class: "muted", text: call.video ? "Incoming video call" : "Incoming voice call" }),
          ),
          h("div", { class: "incoming-call-actions" },
            h("button", {
              type: "button",
              class: "button danger",
              "data-testid": "call-reject",
              text: "Decline",
              onclick: () => call.reject().catch((error) => console.warn("reject failed", error)),
            }),
            h("button", {
              type: "button",
              class: "button primary",
              "data-testid": "call-accept",
              text: "Accept",
              onclick: () => {
                const busy = [...calls.calls.values()].find((c) => c !== call && !c.ended && c.state !== "ringing");
                if (busy) busy.hangup();
                show(call);
                call.answer();
              },
            }),
          ),
        ),
      ),
    );
  }

  // --- the call panel --------------------------------------------------------------------------
  function statusText(call) {
    const name = nameOf(call);
    switch (call.state) {
      case "preparing":
        return "Starting the call…";
      case "inviting":
        return `Calling ${name}…`;
      case "answering":
      case "connecting":
        return "Connecting…";
      case "connected":
        return `Connected · ${clock(Date.now() - call.connectedAt)}`;
      case "ended":
        return endedText(call);
      default:
        return "";
    }
  }

  /** How the call ended (the other person's name is beside it, in the panel's header). */
  function endedText(call) {
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
      case "ice_failed":
        return "Could not connect: the network between you blocks the call (the homeserver may need TURN)";
      case "ice_timeout":
        return "The connection was lost";
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

  function attach(video, stream) {
    if (video.srcObject !== stream) {
      video.srcObject = stream ?? null;
      if (stream) video.play().catch(() => {});
    }
  }

  function buildPanel(call) {
    const remoteVideo = h("video", { class: "call-remote-video", "data-testid": "direct-call-remote-video", autoplay: true, playsinline: true });
    const localVideo = h("video", { class: "call-local-video", "data-testid": "direct-call-local-video", autoplay: true, playsinline: true });
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
    const close = h("button", { type: "button", class: "icon-button", "data-testid": "direct-call-close", title: "Close", "aria-label": "Close", onclick: () => hide(call) }, icon("x"));
    const root = h(
      "section",
      { class: "direct-call card", "data-testid": "direct-call-panel", "aria-label": `Call with ${nameOf(call)}` },
      h("header", { class: "direct-call-header" }, h("strong", { "data-testid": "direct-call-peer", text: nameOf(call) }), status, remoteState, close),
      h("div", { class: "call-videos" }, remoteVideo, localVideo),
      h("footer", { class: "call-controls" }, mute, camera, hangup),
    );
    return { root, remoteVideo, localVideo, status, remoteState, mute, camera, hangup, close };
  }

  function hasVideo(call) {
    return (call.localStream?.getVideoTracks().length ?? 0) > 0;
  }

  function renderPanel() {
    if (!shown) {
      panelSlot.replaceChildren();
      panel = null;
      return;
    }
    const call = shown;
    if (!panel || panel.call !== call) {
      panel = { call, ...buildPanel(call) };
      panelSlot.replaceChildren(panel.root);
    }
    const { root, remoteVideo, localVideo, status, remoteState, mute, camera, hangup, close } = panel;
    root.dataset.state = call.state;
    root.dataset.callId = call.callId;
    root.dataset.roomId = call.roomId;
    root.dataset.direction = call.direction;
    root.dataset.endReason = call.endReason ?? "";
    root.classList.toggle("voice-only", !call.video);
    status.textContent = statusText(call);
    const theirs = call.ended ? { audio: false, video: false } : call.remoteMuted;
    remoteState.dataset.audioMuted = String(theirs.audio);
    remoteState.dataset.videoMuted = String(theirs.video && call.video);
    remoteState.textContent = [
      theirs.audio ? `${nameOf(call)} is muted` : "",
      theirs.video && call.video ? "camera off" : "",
    ]
      .filter(Boolean)
      .join(" · ");
    attach(remoteVideo, call.ended ? null : call.remoteStream);
    attach(localVideo, call.ended ? null : call.localStream);
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

  function show(call) {
    clearTimeout(closeTimer);
    shown = call;
    clearInterval(tick);
    tick = setInterval(() => {
      if (shown?.state === "connected" && panel) panel.status.textContent = statusText(shown);
    }, 1000);
    renderPanel();
  }

  function hide(call) {
    if (shown !== call) return;
    clearInterval(tick);
    clearTimeout(closeTimer);
    shown = null;
    renderPanel();
  }

  calls.addEventListener("change", (event) => {
    const call = /** @type {CustomEvent} */ (event).detail;
    renderIncoming();
    if (call.endReason === "replaced") return; // glare: the call that took over shows instead
    if (call.state !== "ringing" && call.state !== "ended" && shown !== call) show(call);
    if (shown === call) {
      renderPanel();
      if (call.ended) {
        clearInterval(tick);
        closeTimer = setTimeout(() => hide(call), ENDED_SHOWN_MS);
      }
    }
  });
  calls.addEventListener("incoming", () => renderIncoming());

  // --- the DM header's buttons -------------------------------------------------------------------
  function callButtons(roomId) {
    const problem = h("span", { class: "form-error small", role: "alert", "data-testid": "dm-call-error" });
    problem.hidden = true;
    const start = (video) => {
      problem.hidden = true;
      try {
        calls.placeCall(roomId, { video });
      } catch (error) {
        problem.textContent = error.message;
        problem.hidden = false;
      }
    };
    return h(
      "span",
      { class: "dm-call-buttons" },
      problem,
      h("button", {
        type: "button",
        class: "icon-button",
        "data-testid": "dm-call-voice",
        title: "Start a voice call",
        "aria-label": "Start a voice call",
        onclick: () => start(false),
      }, icon("phone")),
      h("button", {
        type: "button",
        class: "icon-button",
        "data-testid": "dm-call-video",
        title: "Start a video call",
        "aria-label": "Start a video call",
        onclick: () => start(true),
      }, icon("video")),
    );
  }

  currentButtons = callButtons;
  return { el, calls, callButtons };
}
