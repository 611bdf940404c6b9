// The user panel at the foot of the sidebar: the user's avatar and name (the same avatar as in
// messages and the member list), desktop notifications, the theme switch and signing out.

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { currentTheme, toggleTheme } from "../theme.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../store.js").ShellStore} options.store  its `me`: the name and avatar shown
 * @param {string} options.userId
 * @param {HTMLElement} options.permissionButton  asks for desktop notifications (notifications.js)
 * @param {() => Promise<void>} options.onSignOut
 */
export function createUserPanel({ client, store, userId, permissionButton, onSignOut }) {
  const name = h("span", { class: "user-panel-name", "data-testid": "display-name" });
  const picture = h("div", { class: "user-panel-avatar", "data-testid": "user-panel-avatar" });
  const themeButton = h("button", {
    type: "button",
    class: "icon-button",
    "data-testid": "theme-toggle",
    onclick: () => {
      toggleTheme();
      showTheme();
    },
  });
  const signOut = h("button", {
    type: "button",
    class: "icon-button danger",
    "data-testid": "sign-out",
    title: "Sign out",
    "aria-label": "Sign out",
    onclick: () => {
      signOut.disabled = true;
      return onSignOut();
    },
  }, icon("log-out"));
  const el = h(
    "footer",
    { class: "user-panel" },
    picture,
    h(
      "div",
      { class: "user-panel-text" },
      name,
      h("span", { class: "user-panel-id muted", text: userId }),
      h("span", { class: "visually-hidden", "data-testid": "signed-in-as", text: `Signed in as ${userId}` }),
    ),
    permissionButton,
    themeButton,
    signOut,
  );

  function showName() {
    const shown = store.state.me.name || userId;
    name.textContent = shown;
    picture.replaceChildren(avatar(client, { mxc: store.state.me.avatar, name: shown, id: userId, size: 32 }));
  }

  function showTheme() {
    const dark = currentTheme() === "dark";
    themeButton.replaceChildren(icon(dark ? "sun" : "moon"));
    themeButton.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
    themeButton.setAttribute("aria-label", themeButton.title);
  }

  store.subscribe(showName, ["me"]);
  showName();
  showTheme();
  return { el };
}
