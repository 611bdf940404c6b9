// The roles dialog: a list of roles beside an editor for name, colour and permissions.

import { h } from "../dom.js";
import { PERMISSIONS, can, myPosition, resolveContext, sortedRoles } from "./context.js";
import { confirmDialog, field, openDialog } from "./dialog.js";

const DEFAULT_COLOR = "#99aab5";

/** Create, edit and delete roles: needs manage_roles; only roles below one's own are editable. */
export function openRoles(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  const allowed = can(server, "manage_roles");
  const mine = myPosition(ctx, server);
  let roles = sortedRoles(server.roles);
  let selected = null; // a role, or "new"

  const list = h("ul", { class: "role-list", "data-testid": "role-list", role: "listbox", "aria-label": "Roles" });
  const create = h("button", {
    type: "button",
    class: "button primary small",
    "data-testid": "role-create",
    text: "Create role",
    onclick: () => select("new"),
  });
  const editor = h("div", { class: "role-editor", "data-testid": "role-editor" });

  const ui = openDialog({
    title: "Roles",
    subtitle: `Use roles to group members of ${server.name} and assign permissions.`,
    testid: "roles-dialog",
    size: "wide",
    body: [
      h(
        "div",
        { class: "split" },
        h("div", { class: "split-side" }, allowed ? create : null, list),
        editor,
      ),
    ],
    footer: [h("button", { type: "button", class: "button link", text: "Done", onclick: () => ui.close() })],
  });

  function editable(role) {
    return allowed && (role === "new" || role.position < mine);
  }

  function renderList() {
    list.replaceChildren(
      ...roles.map((role) => {
        const dot = h("span", { class: `role-dot ${role.color ? "" : "no-color"}`.trim(), "aria-hidden": "true" });
        if (role.color) dot.style.setProperty("background-color", role.color);
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              role: "option",
              class: `role-list-item ${selected !== "new" && selected?.role_id === role.role_id ? "selected" : ""}`.trim(),
              "aria-selected": String(selected !== "new" && selected?.role_id === role.role_id),
              "data-testid": "role-item",
              dataset: { role: role.role_id },
              onclick: () => select(role),
            },
            dot,
            h("span", { class: "role-list-name", text: role.name }),
            role.builtin ? h("span", { class: "muted small", text: "built-in" }) : null,
          ),
        );
      }),
    );
  }

  function select(role) {
    selected = role;
    ui.clearError();
    renderList();
    renderEditor();
  }

  function renderEditor() {
    if (!selected) {
      editor.replaceChildren(h("p", { class: "muted", text: "Pick a role to see its permissions." }));
      return;
    }
    const isNew = selected === "new";
    const role = isNew ? { name: "", color: null, permissions: ["send_messages", "connect", "video"], builtin: false } : selected;
    const canEdit = editable(selected);
    const name = h("input", {
      type: "text",
      "data-testid": "role-name",
      maxlength: 100,
      value: role.name,
      disabled: !canEdit,
      autocomplete: "off",
    });
    const color = h("input", {
      type: "color",
      class: "color-input",
      "data-testid": "role-color",
      value: role.color ?? DEFAULT_COLOR,
      disabled: !canEdit,
    });
    const noColor = h("input", { type: "checkbox", "data-testid": "role-no-color", checked: !role.color, disabled: !canEdit });
    color.addEventListener("input", () => {
      noColor.checked = false;
    });
    // The admin role keeps every permission: the API refuses to change them.
    const lockedPerms = !canEdit || (!isNew && role.role_id === "admin");
    const boxes = PERMISSIONS.map(([perm, label, description]) => {
      const box = h("input", {
        type: "checkbox",
        "data-testid": "perm-toggle",
        dataset: { perm },
        checked: role.permissions.includes(perm),
        disabled: lockedPerms,
      });
      return h(
        "label",
        { class: "perm-row" },
        h("span", { class: "perm-text" }, h("span", { class: "perm-name", text: label }), h("span", { class: "muted small", text: description })),
        box,
      );
    });
    const save = h("button", {
      type: "button",
      class: "button primary",
      "data-testid": "role-save",
      text: isNew ? "Create role" : "Save changes",
      onclick: () => onSave(),
    });
    const remove =
      !isNew && !role.builtin && canEdit
        ? h("button", {
            type: "button",
            class: "button danger",
            "data-testid": "role-delete",
            text: "Delete role",
            onclick: () => onDelete(role),
          })
        : null;
    // replaceChildren writes a null child as the text "null": absent parts are filtered out.
    const parts = [
      h("h3", { class: "section-label", text: isNew ? "New role" : `Edit role — ${role.name}` }),
      canEdit
        ? null
        : h("p", { class: "form-notice", text: allowed ? "This role is at or above your highest role: you can't edit it." : "You need the Manage roles permission to edit roles." }),
      field("Role name", name),
      h(
        "div",
        { class: "field" },
        h("label", { for: "role-color-input", text: "Role colour" }),
        h("div", { class: "color-row" }, color, h("label", { class: "checkbox-label" }, noColor, h("span", { text: "No colour" }))),
      ),
      h("h3", { class: "section-label", text: "Permissions" }),
      h("div", { class: "perm-list" }, boxes),
      canEdit ? h("div", { class: "editor-actions" }, remove, save) : null,
    ];
    editor.replaceChildren(...parts.filter(Boolean));
    color.id = "role-color-input";

    async function onSave() {
      ui.clearError();
      const newName = name.value.trim();
      if (!newName) {
        ui.showError("The role needs a name.");
        name.focus();
        return;
      }
      const newColor = noColor.checked ? null : color.value.toLowerCase();
      const perms = boxes
        .map((row) => row.querySelector("input"))
        .filter((box) => box.checked)
        .map((box) => box.dataset.perm);
      ui.setBusy(true);
      try {
        let saved;
        if (isNew) {
          saved = await ctx.api.createRole(server.server_id, { name: newName, color: newColor ?? undefined, permissions: perms });
          roles = sortedRoles([...roles, saved]);
        } else {
          const changes = {};
          if (newName !== role.name) changes.name = newName;
          if (newColor !== (role.color ?? null)) changes.color = newColor;
          if (!lockedPerms && [...perms].sort().join() !== [...role.permissions].sort().join()) {
            changes.permissions = perms;
          }
          saved = Object.keys(changes).length ? await ctx.api.updateRole(server.server_id, role.role_id, changes) : role;
          roles = sortedRoles(roles.map((r) => (r.role_id === saved.role_id ? saved : r)));
        }
        server.roles = roles;
        ui.setBusy(false);
        select(roles.find((r) => r.role_id === saved.role_id) ?? null);
        await ctx.refresh(server.server_id);
      } catch (err) {
        console.warn("saving the role failed", err);
        ui.setBusy(false);
        ui.showError(err);
      }
    }
  }

  async function onDelete(role) {
    const done = await confirmDialog({
      title: "Delete role",
      message: `Delete the role ${role.name}? Members who have it lose it, and channels it opened close to them.`,
      confirmLabel: "Delete",
      danger: true,
      testid: "role-delete-dialog",
      action: () => ctx.api.deleteRole(server.server_id, role.role_id),
    });
    if (!done) return;
    roles = roles.filter((r) => r.role_id !== role.role_id);
    server.roles = roles;
    select(null);
    await ctx.refresh(server.server_id);
  }

  select(null);
  return ui;
}
