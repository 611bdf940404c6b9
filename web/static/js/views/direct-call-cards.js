// The 1:1 calls' small pieces (views/direct-call.js): the card of a call ringing for us (accept
// or decline), and the voice and video buttons of a DM's header.

import { h } from "../dom.js";
import { icon } from "../icons.js";

/**
 * The card of a call ringing for us.
 * @param {import("../calls/direct.js").DirectCall} call
 * @param {object} options
 * @param {string} options.name  the caller's
 * @param {() => void} options.onAccept
 * @param {() => void} options.onDecline
 */
export function incomingCallCard(call, { name, onAccept, onDecline }) {
  return h(
    "section",
    {
      class: "incoming-call card",
      role: "alertdialog",
      "aria-label": `Incoming call from ${name}`,
      "data-testid": "incoming-call",
      "data-call-id": call.callId,
      "data-room-id": call.roomId,
    },
    h("div", { class: "incoming-call-text" },
      h("strong", { "data-testid": "incoming-call-name", text: name }),
      h("span", { class: "muted", text: call.video ? "Incoming video call" : "Incoming voice call" }),
    ),
    h("div", { class: "incoming-call-actions" },
      h("button", {
        type: "button",
        class: "button danger",
        "data-testid": "call-reject",
        text: "Decline",
        onclick: onDecline,
      }),
      h("button", {
        type: "button",
        class: "button primary",
        "data-testid": "call-accept",
        text: "Accept",
        onclick: onAccept,
      }),
    ),
  );
}

/**
 * A DM header's voice and video call buttons; why a call could not start shows beside them.
 * @param {(options: {video: boolean}) => void} placeCall  throws when the call cannot start
 */
export function callButtons(placeCall) {
  const problem = h("span", { class: "form-error small", role: "alert", "data-testid": "dm-call-error" });
  problem.hidden = true;
  const start = (video) => {
    problem.hidden = true;
    try {
      placeCall({ video });
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
