// The 1:1 call UI: voice / video buttons in a DM's header, the incoming-call card (accept or
// decline), and the call panel (video tiles, mute, camera, hang up) floating over the shell, so
// a call goes on while the person reads other channels. The call logic is calls/direct.js; the
// panel is direct-call-panel.js (its words direct-call-text.js), the card and the buttons
// direct-call-cards.js. This module holds which call is shown and wires them.

import { DirectCalls } from "../calls/direct.js";
import { h } from "../dom.js";
import { callButtons as dmCallButtons, incomingCallCard } from "./direct-call-cards.js";
import { createDirectCallPanel } from "./direct-call-panel.js";

// How long the panel keeps saying how a call ended before it closes on its own.
const ENDED_SHOWN_MS = 8_000;

let stylesheetAdded = false;
function addStylesheet() {
  if (stylesheetAdded) return;
  stylesheetAdded = true;
  document.head.append(h("link", { rel: "stylesheet", href: "/static/css/direct-call.css" }));
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
        incomingCallCard(call, {
          name: nameOf(call),
          onDecline: () => call.reject().catch((error) => console.warn("reject failed", error)),
          onAccept: () => {
            const busy = [...calls.calls.values()].find((c) => c !== call && !c.ended && c.state !== "ringing");
            if (busy) busy.hangup();
            show(call);
            call.answer();
          },
        }),
      ),
    );
  }

  // --- the call panel --------------------------------------------------------------------------
  function renderPanel() {
    if (!shown) {
      panelSlot.replaceChildren();
      panel?.destroy();
      panel = null;
      return;
    }
    const call = shown;
    if (!panel || panel.call !== call) {
      panel?.destroy();
      panel = createDirectCallPanel(call, { nameOf, onClose: () => hide(call) });
      panelSlot.replaceChildren(panel.root);
    }
    panel.render();
  }

  function show(call) {
    clearTimeout(closeTimer);
    shown = call;
    clearInterval(tick);
    tick = setInterval(() => {
      if (shown?.state === "connected" && panel) panel.renderStatus();
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
  const callButtons = (roomId) => dmCallButtons(({ video }) => calls.placeCall(roomId, { video }));

  currentButtons = callButtons;
  return { el, calls, callButtons };
}
