// Accept / Decline under a pending DM invitation (in the DM list and in the invitation's card):
// both buttons wait while one acts, and a failure is told under them, the buttons usable again.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";

/**
 * @param {object} options
 * @param {() => Promise<void>} options.accept
 * @param {() => Promise<void>} options.decline
 * @param {string} [options.size]  "small" in the list
 */
export function inviteButtons({ accept, decline, size = "" }) {
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "dm-invite-error" });
  error.hidden = true;
  const acceptButton = h("button", {
    type: "button",
    class: `button primary ${size}`,
    "data-testid": "dm-accept",
    text: "Accept",
    onclick: () => run(accept),
  });
  const declineButton = h("button", {
    type: "button",
    class: `button ${size}`,
    "data-testid": "dm-decline",
    text: "Decline",
    onclick: () => run(decline),
  });
  async function run(action) {
    acceptButton.disabled = declineButton.disabled = true;
    error.hidden = true;
    try {
      await action();
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
      acceptButton.disabled = declineButton.disabled = false;
    }
  }
  return h("div", { class: `dm-invite-actions ${size}` }, acceptButton, declineButton, error);
}
