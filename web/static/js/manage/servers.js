// Server dialogs: create (or join with an invite), settings, leave and delete.

import { h } from "../dom.js";
import { inviteCodeFrom } from "../guilds-api.js";
import { can, isOwner, joinWithInvite, resolveContext } from "./context.js";
import { Refusal, confirmDialog, field, initials, openDialog, serverIcon } from "./dialog.js";

const MAX_ICON_BYTES = 8 * 1024 * 1024;

/**
 * An icon chooser: a round button showing the current icon (or initials), a hidden file input
 * and a "remove" link. `file()` is the chosen File or null; `removed()` says the icon was cleared.
 */
function iconPicker({ name = "", mxc = null, matrix = null, onProblem }) {
  let chosen = null;
  let removed = false;
  const input = h("input", {
    type: "file",
    accept: "image/png,image/jpeg,image/gif,image/webp",
    class: "visually-hidden",
    "data-testid": "icon-input",
    tabindex: "-1",
  });
  const preview = h("div", { class: "icon-picker-preview" });
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-picker",
      "data-testid": "icon-picker",
      "aria-label": "Upload an icon",
      onclick: () => input.click(),
    },
    preview,
    h("span", { class: "icon-picker-badge", "aria-hidden": "true", text: "+" }),
  );
  const remove = h("button", {
    type: "button",
    class: "button link small",
    "data-testid": "icon-remove",
    text: "Remove icon",
    onclick: () => {
      chosen = null;
      removed = true;
      input.value = "";
      show();
    },
  });

  function show() {
    if (chosen) {
      const img = h("img", { alt: "", src: URL.createObjectURL(chosen) });
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
      preview.replaceChildren(img);
    } else if (mxc && !removed) {
      preview.replaceChildren(serverIcon(name, mxc, matrix, { size: 96, className: "server-icon fill" }));
    } else {
      preview.replaceChildren(
        h("span", { class: "icon-picker-empty", text: name ? initials(name) : "UPLOAD" }),
      );
    }
    remove.hidden = !(chosen || (mxc && !removed));
  }

  input.addEventListener("change", () => {
    const file = input.files?.[0] ?? null;
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      onProblem?.("The icon must be an image (PNG, JPEG, GIF or WebP).");
      return;
    }
    if (file.size > MAX_ICON_BYTES) {
      onProblem?.("The icon must be smaller than 8 MB.");
      return;
    }
    onProblem?.("");
    chosen = file;
    removed = false;
    show();
  });
  show();
  return {
    el: h("div", { class: "icon-picker-row" }, button, input, remove),
    file: () => chosen,
    removed: () => removed,
    setName: (value) => {
      name = value;
      if (!chosen && !(mxc && !removed)) show();
    },
  };
}

/** Create a server (name, optional icon) or join one with an invite link or code. */
export function openCreateServer(rawCtx) {
  const ctx = resolveContext(rawCtx);
  const name = h("input", {
    type: "text",
    "data-testid": "server-name",
    maxlength: 100,
    required: true,
    autocomplete: "off",
    value: `${ctx.userId.replace(/^@/, "").split(":")[0]}'s server`,
  });
  const icon = iconPicker({ name: name.value, onProblem: (m) => ui.showError(m) });
  name.addEventListener("input", () => icon.setName(name.value.trim()));
  const code = h("input", {
    type: "text",
    "data-testid": "invite-input",
    autocomplete: "off",
    placeholder: `${location.origin}/invite/hTKzmak`,
  });

  // The templates the homeserver's admin offers (guilds.yaml); shown only when there is a choice.
  const template = h("select", { "data-testid": "server-template" });
  const templateField = field("Template", template, "The channels and roles your server starts with.");
  templateField.hidden = true;
  ctx.api
    .listTemplates()
    .then((templates) => {
      if (templates.length < 2) return;
      for (const t of templates) {
        const label = t.description ? `${t.name} — ${t.description}` : t.name;
        template.append(h("option", { value: t.name, text: label }));
      }
      template.value = "default";
      templateField.hidden = false;
    })
    .catch((err) => console.warn("templates failed to load", err));

  const createPane = h(
    "div",
    { class: "pane", "data-testid": "create-pane" },
    h("div", { class: "center" }, icon.el),
    field("Server name", name),
    templateField,
    h("p", { class: "field-hint muted", text: "By creating a server, you agree to be nice to its members." }),
  );
  const joinPane = h(
    "div",
    { class: "pane", "data-testid": "join-pane" },
    field("Invite link", code, "Invites look like hTKzmak or " + `${location.origin}/invite/hTKzmak`),
  );
  joinPane.hidden = true;

  const back = h("button", { type: "button", class: "button link", text: "Back", onclick: () => setMode("create") });
  const toJoin = h("button", {
    type: "button",
    class: "button link",
    "data-testid": "switch-to-join",
    text: "Have an invite already? Join a server",
    onclick: () => setMode("join"),
  });
  const submit = h("button", { type: "submit", class: "button primary", "data-testid": "dialog-submit", text: "Create" });

  let mode = "create";
  const ui = openDialog({
    title: "Create a server",
    subtitle: "Your server is where you and your friends hang out. Make yours and start talking.",
    testid: "create-server-dialog",
    body: [createPane, joinPane],
    footer: [back, toJoin, submit],
    onSubmit,
  });
  setMode("create");

  function setMode(next) {
    mode = next;
    createPane.hidden = mode !== "create";
    joinPane.hidden = mode !== "join";
    back.hidden = mode === "create";
    toJoin.hidden = mode !== "create";
    submit.textContent = mode === "create" ? "Create" : "Join server";
    ui.dialog.querySelector(".dialog-title").textContent =
      mode === "create" ? "Create a server" : "Join a server";
    ui.dialog.querySelector(".dialog-subtitle").textContent =
      mode === "create"
        ? "Your server is where you and your friends hang out. Make yours and start talking."
        : "Enter an invite below to join an existing server.";
    ui.clearError();
    (mode === "create" ? name : code).focus();
  }

  async function onSubmit() {
    ui.clearError();
    if (mode === "create") {
      const value = name.value.trim();
      if (!value) {
        ui.showError("Enter a name for your server.");
        name.focus();
        return;
      }
      ui.setBusy(true);
      submit.textContent = "Creating…";
      try {
        let mxc;
        const file = icon.file();
        if (file) mxc = await ctx.matrix.uploadWithProgress(file, { filename: file.name });
        const chosen = templateField.hidden ? undefined : template.value;
        const server = await ctx.api.createServer({ name: value, icon: mxc, template: chosen });
        await ctx.refresh(server.server_id);
        ctx.selectServer(server.server_id);
        ui.close();
      } catch (err) {
        console.warn("create server failed", err);
        ui.setBusy(false);
        submit.textContent = "Create";
        ui.showError(err);
      }
    } else {
      const parsed = inviteCodeFrom(code.value);
      if (!parsed) {
        ui.showError("Enter a valid invite link or code.");
        code.focus();
        return;
      }
      ui.setBusy(true);
      submit.textContent = "Joining…";
      try {
        const serverId = await joinWithInvite(ctx, parsed);
        await ctx.refresh(serverId);
        ctx.selectServer(serverId);
        ui.close();
      } catch (err) {
        console.warn("join failed", err);
        ui.setBusy(false);
        submit.textContent = "Join server";
        ui.showError(err);
      }
    }
  }
  return ui;
}

/** Name, topic and icon of a server, for those with manage_server. */
export function openServerSettings(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  const allowed = can(server, "manage_server");
  const name = h("input", {
    type: "text",
    "data-testid": "server-name",
    maxlength: 100,
    value: server.name ?? "",
    disabled: !allowed,
  });
  const topic = h("textarea", {
    "data-testid": "server-topic",
    maxlength: 1024,
    rows: 3,
    disabled: !allowed,
  });
  topic.value = server.topic ?? "";
  const icon = iconPicker({
    name: server.name,
    mxc: server.icon,
    matrix: ctx.matrix,
    onProblem: (m) => ui.showError(m),
  });
  const save = h("button", { type: "submit", class: "button primary", "data-testid": "dialog-submit", text: "Save changes" });
  const cancel = h("button", { type: "button", class: "button link", text: "Cancel", onclick: () => ui.close() });
  const ui = openDialog({
    title: "Server overview",
    subtitle: server.name,
    testid: "server-settings-dialog",
    body: [
      allowed ? h("div", { class: "center" }, icon.el) : null,
      field("Server name", name),
      field("Topic", topic, "Shown at the top of the server for everyone."),
      allowed ? null : h("p", { class: "form-notice", text: "You need the Manage server permission to change these." }),
    ],
    footer: allowed ? [cancel, save] : [cancel],
    onSubmit,
  });

  async function onSubmit() {
    if (!allowed) return;
    ui.clearError();
    const changes = {};
    const newName = name.value.trim();
    if (!newName) {
      ui.showError("The server needs a name.");
      name.focus();
      return;
    }
    if (newName !== server.name) changes.name = newName;
    if (topic.value !== (server.topic ?? "")) changes.topic = topic.value;
    ui.setBusy(true);
    try {
      const file = icon.file();
      if (file) changes.icon = await ctx.matrix.uploadWithProgress(file, { filename: file.name });
      else if (icon.removed() && server.icon) changes.icon = null;
      if (Object.keys(changes).length > 0) {
        const updated = await ctx.api.updateServer(server.server_id, changes);
        Object.assign(server, updated);
        await ctx.refresh(server.server_id);
      }
      ui.close();
    } catch (err) {
      console.warn("server settings failed", err);
      ui.setBusy(false);
      ui.showError(err);
    }
  }
  return ui;
}

/** Leave a server (not its owner: the owner deletes it or transfers it first). */
export async function confirmLeave(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  if (isOwner(ctx, server)) {
    return confirmDialog({
      title: `Leave '${server.name}'`,
      message:
        "You own this server, so you can't leave it. Transfer it to someone else or delete it.",
      confirmLabel: "OK",
      testid: "leave-dialog",
    }).then(() => false);
  }
  const left = await confirmDialog({
    title: `Leave '${server.name}'`,
    message: `Are you sure you want to leave ${server.name}? You won't be able to rejoin unless you are re-invited.`,
    confirmLabel: "Leave server",
    danger: true,
    testid: "leave-dialog",
    action: () => ctx.api.leaveServer(server.server_id),
  });
  if (left) {
    ctx.onServerGone(server.server_id);
    await ctx.refresh(server.server_id);
  }
  return left;
}

/** Delete a server, owner only, after typing its name as Discord asks. */
export async function confirmDelete(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  if (!isOwner(ctx, server)) return false;
  const typed = h("input", { type: "text", "data-testid": "delete-confirm-name", autocomplete: "off" });
  const deleted = await confirmDialog({
    title: `Delete '${server.name}'`,
    message: `Are you sure you want to delete ${server.name}? Every channel, role and invite goes with it, and nobody will be able to join it again. This cannot be undone.`,
    confirmLabel: "Delete server",
    danger: true,
    testid: "delete-dialog",
    extra: field("Enter the server name", typed),
    action: async () => {
      if (typed.value.trim() !== server.name.trim()) {
        typed.focus();
        throw new Refusal("You didn't enter the server name correctly.");
      }
      await ctx.api.deleteServer(server.server_id);
    },
  });
  if (deleted) {
    ctx.onServerGone(server.server_id);
    await ctx.refresh(server.server_id);
  }
  return deleted;
}
