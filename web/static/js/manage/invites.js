// The "Invite people" dialog: a link to copy, expiry and max-uses choices, the list and revoking.

import { h } from "../dom.js";
import { can, resolveContext } from "./context.js";
import { confirmDialog, openDialog } from "./dialog.js";

const EXPIRY_CHOICES = [
  ["1800", "30 minutes"],
  ["3600", "1 hour"],
  ["21600", "6 hours"],
  ["43200", "12 hours"],
  ["86400", "1 day"],
  ["604800", "7 days"],
  ["", "Never"],
];
const DEFAULT_EXPIRY = "604800";
const MAX_USES_CHOICES = [
  ["", "No limit"],
  ["1", "1 use"],
  ["5", "5 uses"],
  ["10", "10 uses"],
  ["25", "25 uses"],
  ["50", "50 uses"],
  ["100", "100 uses"],
];

function select(testid, choices, selected) {
  return h(
    "select",
    { "data-testid": testid },
    choices.map(([value, label]) =>
      h("option", { value, text: label, selected: value === selected }),
    ),
  );
}

export function formatExpiry(expiresAt, now = Date.now()) {
  if (expiresAt === null || expiresAt === undefined) return "Never expires";
  const left = expiresAt - now;
  if (left <= 0) return "Expired";
  const minutes = Math.round(left / 60_000);
  if (minutes < 60) return `Expires in ${Math.max(1, minutes)} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `Expires in ${hours} h`;
  return `Expires in ${Math.round(hours / 24)} days`;
}

function usable(invite, now = Date.now()) {
  return (
    !invite.revoked &&
    (invite.expires_at === null || invite.expires_at > now) &&
    (invite.max_uses === null || invite.uses < invite.max_uses)
  );
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // the caller selects the text so the person can copy it by hand
  }
}

/** Invite people to a server: needs create_invites. */
export function openInvitePeople(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  const link = h("input", {
    type: "text",
    readonly: true,
    class: "invite-link-input",
    "data-testid": "invite-link",
    "aria-label": "Invite link",
  });
  const copy = h("button", {
    type: "button",
    class: "button primary",
    "data-testid": "invite-copy",
    text: "Copy",
    onclick: onCopy,
  });
  const linkNote = h("p", { class: "field-hint muted", "data-testid": "invite-link-note" });
  const expiry = select("invite-expiry", EXPIRY_CHOICES, DEFAULT_EXPIRY);
  const maxUses = select("invite-max-uses", MAX_USES_CHOICES, "");
  const generate = h("button", {
    type: "button",
    class: "button",
    "data-testid": "invite-generate",
    text: "Generate a new link",
    onclick: () => createLink(),
  });
  const list = h("ul", { class: "manage-list invite-list", "data-testid": "invite-list" });
  const listEmpty = h("p", { class: "muted small", text: "No active invite links." });

  const allowed = can(server, "create_invites");
  const ui = openDialog({
    title: `Invite friends to ${server.name}`,
    testid: "invite-dialog",
    body: allowed
      ? [
          h("label", { class: "section-label", for: "invite-link-field", text: "Send a server invite link to a friend" }),
          h("div", { class: "copy-row" }, link, copy),
          linkNote,
          h(
            "div",
            { class: "invite-settings" },
            h("label", { class: "inline-field" }, h("span", { text: "Expire after" }), expiry),
            h("label", { class: "inline-field" }, h("span", { text: "Max number of uses" }), maxUses),
            generate,
          ),
          h("h3", { class: "section-label", text: "Active invite links" }),
          list,
          listEmpty,
        ]
      : [h("p", { class: "form-notice", text: "You need the Create invites permission to invite people here." })],
    footer: [h("button", { type: "button", class: "button link", text: "Done", onclick: () => ui.close() })],
  });
  link.id = "invite-link-field";
  if (!allowed) return ui;

  let invites = [];

  function showLink(invite) {
    link.value = invite ? invite.url : "";
    link.dataset.code = invite ? invite.code : "";
    const parts = invite ? [formatExpiry(invite.expires_at)] : [];
    if (invite && invite.max_uses !== null) {
      parts.push(`${invite.max_uses - invite.uses} use${invite.max_uses - invite.uses === 1 ? "" : "s"} left`);
    }
    linkNote.textContent = parts.join(" · ");
    copy.disabled = !invite;
  }

  function renderList() {
    const now = Date.now();
    const active = invites.filter((i) => usable(i, now));
    listEmpty.hidden = active.length > 0;
    list.replaceChildren(
      ...active.map((invite) =>
        h(
          "li",
          { class: "manage-row", "data-testid": "invite-row", dataset: { code: invite.code } },
          h(
            "div",
            { class: "manage-row-main" },
            h("span", { class: "mono", text: invite.code }),
            h("span", {
              class: "muted small",
              text: [
                `by ${invite.creator}`,
                invite.max_uses === null ? `${invite.uses} uses` : `${invite.uses}/${invite.max_uses} uses`,
                formatExpiry(invite.expires_at, now),
              ].join(" · "),
            }),
          ),
          h("button", {
            type: "button",
            class: "button danger small",
            "data-testid": "invite-revoke",
            text: "Revoke",
            "aria-label": `Revoke invite ${invite.code}`,
            onclick: () => revoke(invite),
          }),
        ),
      ),
    );
  }

  async function load() {
    try {
      invites = await ctx.api.listInvites(server.server_id);
      renderList();
      // Reuse the newest link this person made, as Discord does, or make one.
      const mine = invites
        .filter((i) => i.creator === ctx.userId && usable(i))
        .sort((a, b) => b.created_at - a.created_at)[0];
      if (mine) showLink(mine);
      else await createLink();
    } catch (err) {
      ui.showError(err);
    }
  }

  async function createLink() {
    ui.clearError();
    generate.disabled = true;
    try {
      const invite = await ctx.api.createInvite(server.server_id, {
        maxUses: maxUses.value ? Number(maxUses.value) : undefined,
        expiresInS: expiry.value ? Number(expiry.value) : undefined,
      });
      invites = [invite, ...invites.filter((i) => i.code !== invite.code)];
      showLink(invite);
      renderList();
      copy.textContent = "Copy";
    } catch (err) {
      console.warn("create invite failed", err);
      ui.showError(err);
    } finally {
      generate.disabled = false;
    }
  }

  async function onCopy() {
    if (!link.value) return;
    const copied = await copyText(link.value);
    if (copied) {
      copy.textContent = "Copied";
      copy.classList.add("success");
      setTimeout(() => {
        copy.textContent = "Copy";
        copy.classList.remove("success");
      }, 1500);
    } else {
      link.focus();
      link.select();
      linkNote.textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
    }
  }

  async function revoke(invite) {
    const ok = await confirmDialog({
      title: "Revoke invite",
      message: `Revoke the invite ${invite.code}? Nobody will be able to join with it any more.`,
      confirmLabel: "Revoke",
      danger: true,
      testid: "revoke-dialog",
      action: () => ctx.api.revokeInvite(server.server_id, invite.code),
    });
    if (!ok) return;
    invites = invites.map((i) => (i.code === invite.code ? { ...i, revoked: true } : i));
    if (link.dataset.code === invite.code) showLink(null);
    renderList();
  }

  showLink(null);
  load();
  return ui;
}
