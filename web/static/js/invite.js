// The invite landing page (/invite/<code>): shows the server, then joins in one click — after
// signing in or up when needed — and opens the app with that server selected.

import { h, readPageConfig } from "./dom.js";
import { GuildsApi } from "./guilds-api.js";
import { joinWithInvite, resolveContext } from "./manage/context.js";
import { errorSentence, serverIcon } from "./manage/dialog.js";
import { MatrixClient, MatrixError } from "./matrix.js";
import { clearSession, loadSession, saveSession } from "./session.js";
import { renderAuth } from "./views/auth.js";

const config = readPageConfig();
const root = document.getElementById("app");
const code = document.querySelector('meta[name="guilds-invite-code"]')?.getAttribute("content") ?? "";

const PROBLEMS = {
  unknown: {
    title: "This invite is invalid",
    text: "There is no invite with this code. Check the link, or ask for a new one.",
  },
  expired: {
    title: "This invite has expired",
    text: "Invite links stop working after a while. Ask for a new one.",
  },
  exhausted: {
    title: "This invite has been used up",
    text: "It was made for a limited number of people, and they have all joined. Ask for a new one.",
  },
  revoked: {
    title: "This invite was revoked",
    text: "Someone on the server turned this link off. Ask for a new one.",
  },
};
const ERRCODE_PROBLEMS = {
  GUILDS_INVITE_EXPIRED: "expired",
  GUILDS_INVITE_EXHAUSTED: "exhausted",
  GUILDS_INVITE_REVOKED: "revoked",
  M_NOT_FOUND: "unknown",
};

function show(view, title) {
  root.replaceChildren(view);
  document.title = `${title} · ${config.brandName}`;
}

function screen(...children) {
  return h("section", { class: "auth-screen" }, ...children);
}

function showProblem(kind) {
  const problem = PROBLEMS[kind] ?? PROBLEMS.unknown;
  show(
    screen(
      h(
        "div",
        { class: "card invite-card invite-problem", "data-testid": "invite-problem", dataset: { kind } },
        h("div", { class: "brand-mark", "aria-hidden": "true" }),
        h("h1", { "data-testid": "invite-problem-title", text: problem.title }),
        h("p", { class: "muted", text: problem.text }),
        h("a", { class: "button primary", href: "/", text: `Continue to ${config.brandName}` }),
      ),
    ),
    problem.title,
  );
}

function showFailure(err) {
  show(
    screen(
      h(
        "div",
        { class: "card invite-card invite-problem", "data-testid": "invite-problem", dataset: { kind: "error" } },
        h("div", { class: "brand-mark", "aria-hidden": "true" }),
        h("h1", { text: "Couldn't load this invite" }),
        h("p", { class: "muted", text: errorSentence(err) }),
        h("button", { type: "button", class: "button primary", text: "Try again", onclick: start }),
      ),
    ),
    "Invite",
  );
}

function usableSession() {
  const session = loadSession();
  if (session && session.homeserverUrl === config.homeserverUrl) return session;
  if (session) clearSession();
  return null;
}

function matrixFor(session) {
  return new MatrixClient({ baseUrl: session.homeserverUrl, accessToken: session.accessToken });
}

/**
 * The server's icon, or its initials: the image comes through the provisioning API, which
 * fetches it for anyone holding a usable code (media needs a token a visitor does not have).
 */
function landingIcon(preview) {
  const el = serverIcon(preview.name, null, null, { size: 128 });
  if (preview.icon) {
    const img = h("img", { alt: "", "data-testid": "invite-icon", src: new GuildsApi().inviteIconUrl(code) });
    img.addEventListener("load", () => {
      el.replaceChildren(img);
      el.classList.add("has-image");
    });
  }
  return el;
}

function showPreview(preview) {
  const session = usableSession();
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "invite-error" });
  error.hidden = true;
  const accept = h("button", {
    type: "button",
    class: "button primary wide",
    "data-testid": "invite-accept",
    text: "Accept invite",
    onclick: () => (usableSession() ? join(usableSession(), accept, error) : showAuth(preview)),
  });
  const members = preview.member_count;
  show(
    screen(
      h(
        "div",
        { class: "card invite-card", "data-testid": "invite-preview" },
        landingIcon(preview),
        h("p", { class: "invite-kicker", text: "You've been invited to join" }),
        h("h1", { class: "invite-name", "data-testid": "invite-server-name", text: preview.name }),
        h("p", {
          class: "invite-meta muted",
          "data-testid": "invite-member-count",
          text: `${members} member${members === 1 ? "" : "s"}`,
        }),
        error,
        accept,
        session
          ? h("p", { class: "auth-footer muted", "data-testid": "invite-signed-in", text: `Signed in as ${session.userId}` })
          : h("p", { class: "auth-footer muted", text: "You'll sign in or create an account first." }),
      ),
    ),
    `Join ${preview.name}`,
  );
  accept.focus();
}

function showAuth(preview) {
  const client = new MatrixClient({ baseUrl: config.homeserverUrl });
  const view = renderAuth({
    config,
    client,
    mode: "sign-up",
    notice: `Sign in or create an account to join ${preview.name}.`,
    onSignedIn: (session) => {
      saveSession(session);
      // Back to the card, which joins at once: one click was already spent on "Accept".
      showPreview(preview);
      const accept = root.querySelector('[data-testid="invite-accept"]');
      const error = root.querySelector('[data-testid="invite-error"]');
      join(session, accept, error);
    },
  });
  show(h("div", { class: "invite-auth" }, view), "Sign in");
}

async function join(session, button, error) {
  error.hidden = true;
  button.disabled = true;
  button.textContent = "Joining…";
  try {
    const ctx = resolveContext({ session, matrix: matrixFor(session) });
    const serverId = await joinWithInvite(ctx, code);
    location.assign(`/#server=${encodeURIComponent(serverId)}`);
  } catch (err) {
    console.warn("joining failed", err);
    if (err instanceof MatrixError && ERRCODE_PROBLEMS[err.errcode]) {
      showProblem(ERRCODE_PROBLEMS[err.errcode]);
      return;
    }
    if (err instanceof MatrixError && ["M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"].includes(err.errcode)) {
      clearSession();
    }
    button.disabled = false;
    button.textContent = "Accept invite";
    error.textContent = errorSentence(err);
    error.hidden = false;
  }
}

async function start() {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(code)) {
    showProblem("unknown");
    return;
  }
  try {
    const preview = await new GuildsApi().previewInvite(code);
    if (!preview.valid) showProblem(preview.status in PROBLEMS ? preview.status : "unknown");
    else showPreview(preview);
  } catch (err) {
    if (err instanceof MatrixError && err.errcode === "M_NOT_FOUND") showProblem("unknown");
    else showFailure(err);
  }
}

start();
