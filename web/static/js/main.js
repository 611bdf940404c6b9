// The browser client's entry point: picks the screen for the current session and switches views.

import { readPageConfig } from "./dom.js";
import { MatrixClient } from "./matrix.js";
import { clearSession, loadSession, saveSession } from "./session.js";
import { applyStoredTheme } from "./theme.js";
import { renderAuth } from "./views/auth.js";
import { renderHome } from "./views/home.js";

applyStoredTheme();
const config = readPageConfig();
const root = document.getElementById("app");

function show(view, title) {
  root.replaceChildren(view);
  document.title = title ? `${title} · ${config.brandName}` : config.brandName;
}

function showAuth(notice = "") {
  const client = new MatrixClient({ baseUrl: config.homeserverUrl });
  show(renderAuth({ config, client, notice, onSignedIn }), "Sign in");
}

function onSignedIn(session) {
  saveSession(session);
  showHome(session);
}

function showHome(session) {
  const client = new MatrixClient({
    baseUrl: session.homeserverUrl,
    accessToken: session.accessToken,
  });
  show(renderHome({ config, client, session, onSignedOut }), "Home");
}

function onSignedOut(notice = "") {
  clearSession();
  showAuth(notice);
}

function start() {
  const session = loadSession();
  // A session for another homeserver (the config changed) cannot be used: the CSP blocks it.
  if (session && session.homeserverUrl === config.homeserverUrl) {
    showHome(session);
  } else {
    if (session) clearSession();
    showAuth();
  }
}

// Signing in or out in another tab changes this one too.
window.addEventListener("storage", (event) => {
  if (event.key === null || event.key.startsWith("guilds.session")) start();
});

start();
