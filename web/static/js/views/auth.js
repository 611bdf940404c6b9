// The sign-in / sign-up screen shown to anyone without a session.

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { sessionFromLogin } from "../session.js";

// The spec's grammar for new user ids' localparts (guilds/ids.py LOCALPART_RE).
const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;
const DEVICE_NAME = "Guilds web";

const MODES = {
  "sign-in": {
    tab: "Sign in",
    title: "Welcome back!",
    subtitle: "Sign in to pick up where you left off.",
    submit: "Sign in",
    busy: "Signing in…",
  },
  "sign-up": {
    tab: "Sign up",
    title: "Create an account",
    subtitle: "Pick a username. It's how people will find you.",
    submit: "Create account",
    busy: "Creating your account…",
  },
};

/**
 * @param {object} options
 * @param {{brandName: string, homeserverUrl: string, serverName: string}} options.config
 * @param {import("../matrix.js").MatrixClient} options.client  without a token
 * @param {(session: object) => void} options.onSignedIn
 * @param {string} [options.notice]  shown above the form, e.g. after a session ended
 * @param {"sign-in" | "sign-up"} [options.mode]
 */
export function renderAuth({ config, client, onSignedIn, notice = "", mode = "sign-in" }) {
  const fieldId = (name) => `auth-${name}`;

  const title = h("h1", { class: "auth-title", "data-testid": "auth-title" });
  const subtitle = h("p", { class: "auth-subtitle muted" });

  const tabs = Object.entries(MODES).map(([key, text]) =>
    h("button", {
      type: "button",
      role: "tab",
      class: "tab",
      id: `tab-${key}`,
      "data-testid": `tab-${key}`,
      "aria-controls": "auth-form",
      text: text.tab,
      onclick: () => setMode(key),
    }),
  );

  const username = h("input", {
    id: fieldId("username"),
    "data-testid": "username",
    name: "username",
    type: "text",
    required: true,
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    maxlength: 255,
  });
  const password = h("input", {
    id: fieldId("password"),
    "data-testid": "password",
    name: "password",
    type: "password",
    required: true,
    maxlength: 512,
  });
  const confirm = h("input", {
    id: fieldId("password-confirm"),
    "data-testid": "password-confirm",
    name: "password-confirm",
    type: "password",
    autocomplete: "new-password",
    maxlength: 512,
  });
  const usernameHint = h("p", { class: "field-hint muted", id: "auth-username-hint" });
  const confirmField = h(
    "div",
    { class: "field" },
    h("label", { for: confirm.id, text: "Confirm password" }),
    confirm,
  );

  const error = h("p", { class: "form-error", role: "alert", "data-testid": "auth-error" });
  error.hidden = true;
  const noticeBox = h("p", { class: "form-notice", role: "status", "data-testid": "auth-notice" });
  noticeBox.textContent = notice;
  noticeBox.hidden = !notice;

  const submit = h("button", { type: "submit", class: "button primary wide", "data-testid": "auth-submit" });

  const form = h(
    "form",
    { id: "auth-form", class: "auth-form", novalidate: true, onsubmit: onSubmit },
    h(
      "div",
      { class: "field" },
      h("label", { for: username.id, text: "Username" }),
      h(
        "div",
        { class: "input-with-suffix" },
        username,
        config.serverName ? h("span", { class: "input-suffix", text: `:${config.serverName}` }) : null,
      ),
      usernameHint,
    ),
    h("div", { class: "field" }, h("label", { for: password.id, text: "Password" }), password),
    confirmField,
    error,
    submit,
  );

  const screen = h(
    "section",
    { class: "auth-screen", "data-testid": "auth-screen" },
    h(
      "div",
      { class: "card auth-card" },
      h(
        "header",
        { class: "auth-header" },
        h("div", { class: "brand-mark", "aria-hidden": "true" }),
        h("p", { class: "brand-name", text: config.brandName }),
        title,
        subtitle,
      ),
      h("div", { class: "tabs", role: "tablist", "aria-label": "Sign in or sign up" }, tabs),
      noticeBox,
      form,
      h(
        "p",
        { class: "auth-footer muted" },
        "Homeserver ",
        h("span", { class: "mono", "data-testid": "auth-homeserver", text: config.homeserverUrl }),
      ),
    ),
  );

  function setMode(next) {
    mode = next;
    const text = MODES[mode];
    title.textContent = text.title;
    subtitle.textContent = text.subtitle;
    submit.textContent = text.submit;
    for (const tab of tabs) {
      const selected = tab.id === `tab-${mode}`;
      tab.setAttribute("aria-selected", String(selected));
      tab.classList.toggle("selected", selected);
    }
    const signUp = mode === "sign-up";
    confirmField.hidden = !signUp;
    confirm.required = signUp;
    password.autocomplete = signUp ? "new-password" : "current-password";
    usernameHint.textContent = signUp ? "Lower-case letters, digits and . _ = - / +" : "";
    usernameHint.hidden = !signUp;
    showError("");
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  function setBusy(busy) {
    for (const el of [username, password, confirm, submit, ...tabs]) el.disabled = busy;
    submit.textContent = busy ? MODES[mode].busy : MODES[mode].submit;
    form.setAttribute("aria-busy", String(busy));
  }

  /** What to send as the username: people paste full ids, which sign-up does not accept. */
  function typedUsername() {
    const value = username.value.trim();
    const full = /^@([^:]+):(.+)$/.exec(value);
    if (full && (!config.serverName || full[2] === config.serverName)) return full[1];
    return value.startsWith("@") ? value.slice(1) : value;
  }

  function validate() {
    const name = typedUsername();
    if (!name) return [username, "Enter a username."];
    if (!password.value) return [password, "Enter a password."];
    if (mode === "sign-up") {
      if (!LOCALPART_RE.test(name)) {
        return [username, "That username isn't allowed. Use lower-case letters, digits and . _ = - / + only."];
      }
      if (password.value !== confirm.value) return [confirm, "The passwords don't match."];
    }
    return null;
  }

  async function onSubmit(event) {
    event.preventDefault();
    noticeBox.hidden = true;
    const problem = validate();
    if (problem) {
      showError(problem[1]);
      problem[0].focus();
      return;
    }
    showError("");
    setBusy(true);
    const action = mode;
    try {
      const answer =
        action === "sign-up"
          ? await client.register(typedUsername(), password.value, { deviceName: DEVICE_NAME })
          : await client.login(username.value.trim(), password.value, { deviceName: DEVICE_NAME });
      password.value = "";
      confirm.value = "";
      onSignedIn(sessionFromLogin(answer, client.baseUrl));
    } catch (err) {
      console.warn(`${action} failed`, err);
      setBusy(false);
      showError(describeError(err, action));
      (action === "sign-in" ? password : username).focus();
    }
  }

  setMode(mode);
  queueMicrotask(() => username.focus());
  return screen;
}
