// Channel and category editors: create, edit (kind, name, topic, category, gating roles), delete.

import { channelNameAsTyped, normalizeChannelName } from "../channel-names.js";
import { h } from "../dom.js";
import { CHANNEL_KIND_ICONS, icon } from "../icons.js";
import { can, resolveContext, sortedRoles } from "./context.js";
import { confirmDialog, field, openDialog } from "./dialog.js";

const KINDS = [
  ["text", "Text", "Send messages, images, opinions and puns."],
  ["voice", "Voice", "Hang out together with voice."],
  ["video", "Video", "Talk face to face with cameras on."],
];

/**
 * Create a channel (no `channel`) or edit one. The default channel cannot be renamed, retyped or
 * deleted; its topic and category can still change.
 */
export function openChannelEditor(rawCtx, server, channel = null, { categoryId = null } = {}) {
  const ctx = resolveContext(rawCtx);
  const isNew = !channel;
  const allowed = can(server, "manage_channels");
  const isDefault = !isNew && channel.channel_id === server.default_channel_id;
  const current = channel ?? { name: "", kind: "text", topic: "", category_id: categoryId, allowed_roles: null };

  const kindInputs = KINDS.map(([kind, label, description]) => {
    const input = h("input", {
      type: "radio",
      name: "channel-kind",
      value: kind,
      "data-testid": `kind-${kind}`,
      checked: current.kind === kind,
      disabled: !allowed || isDefault,
    });
    return h(
      "label",
      { class: "kind-option" },
      h("span", { class: "kind-glyph", "aria-hidden": "true" }, icon(CHANNEL_KIND_ICONS[kind], { size: 24 })),
      h("span", { class: "kind-text" }, h("span", { class: "kind-name", text: label }), h("span", { class: "muted small", text: description })),
      input,
    );
  });
  const name = h("input", {
    type: "text",
    "data-testid": "channel-name",
    maxlength: 100,
    value: current.name,
    placeholder: "new-channel",
    disabled: !allowed || isDefault,
    autocomplete: "off",
  });
  const topic = h("textarea", { "data-testid": "channel-topic", maxlength: 1024, rows: 2, disabled: !allowed });
  topic.value = current.topic ?? "";
  const category = h(
    "select",
    { "data-testid": "channel-category", disabled: !allowed },
    h("option", { value: "", text: "No category" }),
    [...(server.categories ?? [])]
      .sort((a, b) => a.order - b.order)
      .map((c) => h("option", { value: c.category_id, text: c.name, selected: c.category_id === current.category_id })),
  );
  const gated = h("input", {
    type: "checkbox",
    "data-testid": "channel-private",
    checked: Array.isArray(current.allowed_roles),
    disabled: !allowed || isDefault,
  });
  const roleBoxes = sortedRoles(server.roles)
    .filter((r) => r.role_id !== "admin" && r.role_id !== "member")
    .map((role) => {
      const box = h("input", {
        type: "checkbox",
        "data-testid": "gate-role",
        dataset: { role: role.role_id },
        checked: (current.allowed_roles ?? []).includes(role.role_id),
        disabled: !allowed || isDefault,
      });
      return h("label", { class: "checkbox-label" }, box, h("span", { text: role.name }));
    });
  const rolesPanel = h(
    "div",
    { class: "gate-roles", "data-testid": "gate-roles" },
    h("p", { class: "muted small", text: "Only these roles (and admins) can see and join this channel." }),
    roleBoxes.length ? roleBoxes : h("p", { class: "muted small", text: "No roles to pick yet: create one in Roles." }),
  );
  const syncGate = () => {
    rolesPanel.hidden = !gated.checked;
  };
  gated.addEventListener("change", syncGate);
  syncGate();

  const save = h("button", { type: "submit", class: "button primary", "data-testid": "dialog-submit", text: isNew ? "Create channel" : "Save changes" });
  const cancel = h("button", { type: "button", class: "button link", text: "Cancel", onclick: () => ui.close() });
  const remove =
    !isNew && allowed && !isDefault
      ? h("button", { type: "button", class: "button danger", "data-testid": "channel-delete", text: "Delete channel", onclick: onDelete })
      : null;

  const ui = openDialog({
    title: isNew ? "Create channel" : "Edit channel",
    subtitle: isNew ? `in ${server.name}` : current.name,
    testid: "channel-dialog",
    body: [
      isDefault ? h("p", { class: "form-notice", "data-testid": "default-channel-note", text: "This is the server's default channel: it can't be renamed, retyped or deleted." }) : null,
      allowed ? null : h("p", { class: "form-notice", text: "You need the Manage channels permission to change channels." }),
      h("fieldset", { class: "kind-choices" }, h("legend", { class: "section-label", text: "Channel type" }), kindInputs),
      field("Channel name", name),
      field("Topic", topic),
      field("Category", category),
      h(
        "div",
        { class: "field" },
        h("label", { class: "checkbox-label switch" }, gated, h("span", { text: "Private channel" })),
        rolesPanel,
      ),
    ],
    footer: allowed ? [remove, h("span", { class: "spacer" }), cancel, save] : [cancel],
    onSubmit,
  });

  // Text channels are named like Discord's as one types (channel-names.js).
  const kindNow = () => kindInputs.map((l) => l.querySelector("input")).find((i) => i.checked)?.value ?? "text";
  const tidyName = () => {
    const typed = channelNameAsTyped(name.value, kindNow());
    if (typed !== name.value) name.value = typed;
  };
  if (!isDefault) {
    name.addEventListener("input", tidyName);
    for (const label of kindInputs) label.querySelector("input").addEventListener("change", tidyName);
  }

  function chosenRoles() {
    if (!gated.checked) return null;
    return roleBoxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => b.dataset.role);
  }

  async function onSubmit() {
    if (!allowed) return;
    ui.clearError();
    const kind = kindNow();
    // A name left as it was stays as it was (made elsewhere, or before this convention).
    const untouched = isDefault || (!isNew && name.value === channel.name);
    const newName = untouched ? name.value.trim() : normalizeChannelName(name.value, kind);
    if (!newName) {
      ui.showError("The channel needs a name.");
      name.focus();
      return;
    }
    const allowedRoles = chosenRoles();
    const categoryId = category.value || null;
    ui.setBusy(true);
    try {
      let made = null;
      if (isNew) {
        made = await ctx.api.createChannel(server.server_id, {
          name: newName,
          kind,
          topic: topic.value || undefined,
          category_id: categoryId ?? undefined,
          allowed_roles: allowedRoles ?? undefined,
        });
      } else {
        const changes = {};
        if (!isDefault && newName !== channel.name) changes.name = newName;
        if (!isDefault && kind !== channel.kind) changes.kind = kind;
        if (topic.value !== (channel.topic ?? "")) changes.topic = topic.value;
        if (categoryId !== (channel.category_id ?? null)) changes.category_id = categoryId;
        const before = channel.allowed_roles ? [...channel.allowed_roles].sort().join() : null;
        const after = allowedRoles ? [...allowedRoles].sort().join() : null;
        if (!isDefault && before !== after) changes.allowed_roles = allowedRoles;
        if (Object.keys(changes).length) {
          Object.assign(channel, await ctx.api.updateChannel(server.server_id, channel.channel_id, changes));
        }
      }
      await ctx.refresh(server.server_id);
      ui.close();
      // As in Discord, the channel just made is opened.
      if (made?.channel_id) ctx.openChannel(server.server_id, made.channel_id);
    } catch (err) {
      console.warn("saving the channel failed", err);
      ui.setBusy(false);
      ui.showError(err);
    }
  }

  async function onDelete() {
    const done = await confirmDialog({
      title: "Delete channel",
      message: `Are you sure you want to delete ${channel.name}? This cannot be undone.`,
      confirmLabel: "Delete channel",
      danger: true,
      testid: "channel-delete-dialog",
      action: () => ctx.api.deleteChannel(server.server_id, channel.channel_id),
    });
    if (!done) return;
    await ctx.refresh(server.server_id);
    ui.close();
  }
  return ui;
}

/** Create a category (no `category`) or rename / delete one. */
export function openCategoryEditor(rawCtx, server, category = null) {
  const ctx = resolveContext(rawCtx);
  const isNew = !category;
  const allowed = can(server, "manage_channels");
  const name = h("input", {
    type: "text",
    "data-testid": "category-name",
    maxlength: 100,
    value: category?.name ?? "",
    placeholder: "New category",
    disabled: !allowed,
    autocomplete: "off",
  });
  const save = h("button", { type: "submit", class: "button primary", "data-testid": "dialog-submit", text: isNew ? "Create category" : "Save changes" });
  const cancel = h("button", { type: "button", class: "button link", text: "Cancel", onclick: () => ui.close() });
  const remove =
    !isNew && allowed
      ? h("button", { type: "button", class: "button danger", "data-testid": "category-delete", text: "Delete category", onclick: onDelete })
      : null;
  const ui = openDialog({
    title: isNew ? "Create category" : "Edit category",
    subtitle: isNew ? `in ${server.name}` : category.name,
    testid: "category-dialog",
    size: "small",
    body: [
      allowed ? null : h("p", { class: "form-notice", text: "You need the Manage channels permission to change categories." }),
      field("Category name", name),
    ],
    footer: allowed ? [remove, h("span", { class: "spacer" }), cancel, save] : [cancel],
    onSubmit,
  });

  async function onSubmit() {
    if (!allowed) return;
    ui.clearError();
    const newName = name.value.trim();
    if (!newName) {
      ui.showError("The category needs a name.");
      name.focus();
      return;
    }
    ui.setBusy(true);
    try {
      if (isNew) await ctx.api.createCategory(server.server_id, { name: newName });
      else if (newName !== category.name) {
        Object.assign(category, await ctx.api.updateCategory(server.server_id, category.category_id, { name: newName }));
      }
      await ctx.refresh(server.server_id);
      ui.close();
    } catch (err) {
      console.warn("saving the category failed", err);
      ui.setBusy(false);
      ui.showError(err);
    }
  }

  async function onDelete() {
    const done = await confirmDialog({
      title: "Delete category",
      message: `Delete the category ${category.name}? Its channels stay, at the top level.`,
      confirmLabel: "Delete category",
      danger: true,
      testid: "category-delete-dialog",
      action: () => ctx.api.deleteCategory(server.server_id, category.category_id),
    });
    if (!done) return;
    await ctx.refresh(server.server_id);
    ui.close();
  }
  return ui;
}
