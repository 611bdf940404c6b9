// Home without a direct conversation open: a welcome (back), "Create a server", and a box to
// join a server with an invite link or code.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { inviteCodeFrom } from "../guilds-api.js";

/**
 * @param {object} options
 * @param {{brandName: string}} options.config
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../guilds-api.js").GuildsApi} options.api
 * @param {import("../store.js").ShellStore} options.store
 * @param {string} options.userId
 * @param {() => void} options.onCreate  "Create a server" clicked
 * @param {(serverId: string) => Promise<void>} options.onJoined  a server joined with an invite
 */
export function renderWelcome({ config, client, api, store, userId, onCreate, onJoined }) {
  const code = h("input", {
    type: "text",
    "data-testid": "join-code",
    placeholder: "https://…/invite/hTKzmak or hTKzmak",
    "aria-label": "Invite link or code",
  });
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "join-error" });
  error.hidden = true;
  const joinButton = h("button", { type: "submit", class: "button primary", "data-testid": "join-submit", text: "Join" });
  const form = h(
    "form",
    {
      class: "join-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const parsed = inviteCodeFrom(code.value);
        error.hidden = true;
        if (!parsed) {
          error.textContent = "Enter a valid invite link or code.";
          error.hidden = false;
          return;
        }
        joinButton.disabled = true;
        try {
          const { server_id: sid } = await api.redeemInvite(parsed);
          await client.joinRoom(sid);
          await onJoined(sid);
        } catch (err) {
          error.textContent = describeError(err);
          error.hidden = false;
        } finally {
          joinButton.disabled = false;
        }
      },
    },
    h("label", { class: "field-label", text: "Have an invite? Paste it here" }),
    h("div", { class: "join-row" }, code, joinButton),
    error,
  );
  const hasServers = store.state.order.length > 0;
  return h(
    "section",
    { class: "welcome", "data-testid": hasServers ? "home-screen" : "create-or-join" },
    h(
      "div",
      { class: "card welcome-card" },
      h("div", { class: "brand-mark", "aria-hidden": "true" }),
      h("h1", { class: "welcome-name", text: hasServers ? `Welcome back, ${store.state.me.name ?? userId}` : `Welcome to ${config.brandName}!` }),
      h("p", {
        class: "muted",
        text: hasServers
          ? "Pick a server on the left, create another one, or join with an invite."
          : "Servers are where you and your friends hang out. Create one, or join one with an invite.",
      }),
      h("button", { type: "button", class: "button primary wide", "data-testid": "create-server", text: "Create a server", onclick: () => onCreate() }),
      h("div", { class: "or", text: "or" }),
      form,
    ),
  );
}
