// The signed-in shell: server rail, sidebar and main area. For now it says who is signed in;
// servers, channels and chat grow into the rail, the sidebar and the main area.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { MatrixError } from "../matrix.js";

/**
 * @param {object} options
 * @param {{brandName: string}} options.config
 * @param {import("../matrix.js").MatrixClient} options.client  with the session's token
 * @param {{userId: string, deviceId: string}} options.session
 * @param {(notice?: string) => void} options.onSignedOut  drops the session and shows sign-in
 */
export function renderHome({ config, client, session, onSignedOut }) {
  const displayName = h("h1", { class: "welcome-name", "data-testid": "display-name" });
  const panelName = h("span", { class: "user-panel-name" });
  const avatar = h("div", { class: "avatar", "aria-hidden": "true" });
  const banner = h("p", { class: "banner", role: "status", "data-testid": "home-banner" });
  banner.hidden = true;

  const signOut = h("button", {
    type: "button",
    class: "button danger",
    "data-testid": "sign-out",
    text: "Sign out",
    onclick: onSignOut,
  });

  const view = h(
    "div",
    { class: "shell", "data-testid": "home-view" },
    h(
      "nav",
      { class: "server-rail", "aria-label": "Servers" },
      h(
        "button",
        { type: "button", class: "rail-item selected", title: "Home", "aria-current": "page" },
        h("span", { class: "brand-mark small", "aria-hidden": "true" }),
      ),
      h("div", { class: "rail-separator", "aria-hidden": "true" }),
    ),
    h(
      "aside",
      { class: "sidebar" },
      h("header", { class: "sidebar-header", text: config.brandName }),
      h("div", { class: "sidebar-body muted", text: "Your servers and conversations will show up here." }),
      h(
        "footer",
        { class: "user-panel" },
        avatar,
        h(
          "div",
          { class: "user-panel-text" },
          panelName,
          h("span", { class: "user-panel-id muted", text: session.userId }),
        ),
      ),
    ),
    h(
      "main",
      { class: "content" },
      h("header", { class: "content-header" }, h("span", { class: "content-title", text: "Home" })),
      h(
        "section",
        { class: "welcome" },
        banner,
        h(
          "div",
          { class: "card welcome-card" },
          h("div", { class: "avatar large", "aria-hidden": "true" }),
          displayName,
          h("p", { class: "muted", "data-testid": "signed-in-as", text: `Signed in as ${session.userId}` }),
          h("p", { class: "muted small", text: `Device ${session.deviceId}` }),
          signOut,
        ),
      ),
    ),
  );

  function showName(name) {
    const shown = name || session.userId;
    displayName.textContent = shown;
    panelName.textContent = shown;
    const initial = (shown.replace(/^@/, "")[0] || "?").toUpperCase();
    for (const el of view.querySelectorAll(".avatar")) el.textContent = initial;
  }

  function showBanner(message) {
    banner.textContent = message;
    banner.hidden = !message;
  }

  async function onSignOut() {
    signOut.disabled = true;
    signOut.textContent = "Signing out…";
    let notice = "";
    try {
      await client.logout();
    } catch (err) {
      // A token the server no longer knows is signed out already; anything else is still
      // signed out here, and the person should know the server may keep the session.
      if (!(err instanceof MatrixError && err.errcode === "M_UNKNOWN_TOKEN")) {
        console.warn("logout failed", err);
        notice = `Signed out on this device, but the homeserver was not told: ${describeError(err)}`;
      }
    }
    onSignedOut(notice);
  }

  /** Check the stored token still works, and fetch the display name. */
  async function refresh() {
    try {
      const me = await client.whoami();
      if (me.user_id !== session.userId) {
        onSignedOut("Your session belongs to another account. Sign in again.");
        return;
      }
      showName(await client.getDisplayName(session.userId));
      showBanner("");
    } catch (err) {
      if (err instanceof MatrixError && ["M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"].includes(err.errcode)) {
        onSignedOut("Your session has ended. Sign in again.");
        return;
      }
      console.warn("could not load the profile", err);
      showBanner(describeError(err));
    }
  }

  showName(null);
  refresh();
  return view;
}
