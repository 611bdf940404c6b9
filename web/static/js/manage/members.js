// The members dialog: a paginated list with role changes, kick and ban (each confirmed).

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { can, highestPosition, myPosition, resolveContext, sortedRoles } from "./context.js";
import { confirmDialog, field, openDialog } from "./dialog.js";

const PAGE_SIZE = 50;

function roleChip(role) {
  const chip = h(
    "span",
    { class: "role-chip", "data-testid": "role-chip", dataset: { role: role.role_id } },
    h("span", { class: `role-dot ${role.color ? "" : "no-color"}`.trim(), "aria-hidden": "true" }),
    h("span", { text: role.name }),
  );
  // A colour from the network reaches style only through this one property, never as CSS text.
  if (role.color && /^#[0-9a-fA-F]{6}$/.test(role.color)) {
    chip.firstChild.style.setProperty("background-color", role.color);
  }
  return chip;
}

/** Members of a server: needs manage_roles, kick_members or ban_members to act on them. */
export function openMembers(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  const list = h("ul", { class: "manage-list member-list", "data-testid": "member-list" });
  const more = h("button", {
    type: "button",
    class: "button link",
    "data-testid": "members-more",
    text: "Load more members",
    onclick: () => loadPage(),
  });
  more.hidden = true;
  const search = h("input", {
    type: "search",
    placeholder: "Search members",
    "aria-label": "Search members",
    "data-testid": "member-search",
    oninput: () => filter(),
  });
  const ui = openDialog({
    title: "Members",
    subtitle: server.name,
    testid: "members-dialog",
    size: "wide",
    body: [search, list, more],
    footer: [h("button", { type: "button", class: "button link", text: "Done", onclick: () => ui.close() })],
  });

  const roles = sortedRoles(server.roles);
  const rolesById = new Map(roles.map((r) => [r.role_id, r]));
  const mine = myPosition(ctx, server);
  let next = null;
  let loading = false;

  /** Whether the caller outranks this member (the hierarchy rule; owners are untouchable). */
  function outranks(member) {
    if (member.owner || member.user_id === ctx.userId) return false;
    return mine > highestPosition(server, member.roles);
  }

  function renderMember(member) {
    const row = h("li", {
      class: "manage-row member-row",
      "data-testid": "member-row",
      dataset: { userId: member.user_id },
    });
    const fill = () => {
      const name = member.display_name || member.user_id;
      const chips = h(
        "div",
        { class: "role-chips", "data-testid": "member-role-chips" },
        member.roles
          .map((id) => rolesById.get(id))
          .filter((r) => r && r.role_id !== "member")
          .map(roleChip),
      );
      const actions = h("div", { class: "manage-row-actions" });
      const acting = outranks(member);
      if (acting && can(server, "manage_roles")) {
        actions.append(
          h("button", {
            type: "button",
            class: "button small",
            "data-testid": "member-roles",
            text: "Roles",
            "aria-expanded": "false",
            onclick: (event) => toggleRoles(event.currentTarget),
          }),
        );
      }
      if (acting && can(server, "kick_members")) {
        actions.append(
          h("button", {
            type: "button",
            class: "button small danger-outline",
            "data-testid": "member-kick",
            text: "Kick",
            onclick: () => kick(member),
          }),
        );
      }
      if (acting && can(server, "ban_members")) {
        actions.append(
          h("button", {
            type: "button",
            class: "button small danger",
            "data-testid": "member-ban",
            text: "Ban",
            onclick: () => ban(member),
          }),
        );
      }
      const panel = h("div", { class: "role-toggles", "data-testid": "role-toggles" });
      panel.hidden = true;
      row.replaceChildren(
        h(
          "div",
          { class: "manage-row-line" },
          avatar(ctx.matrix, { mxc: member.avatar, name, id: member.user_id, size: 32 }),
          h(
            "div",
            { class: "manage-row-main" },
            h(
              "span",
              { class: "member-name" },
              h("span", { "data-testid": "member-name", text: name }),
              member.owner ? h("span", { class: "owner-badge", title: "Server owner" }, icon("crown", { size: 14 })) : null,
            ),
            h("span", { class: "muted small", text: member.user_id }),
            chips,
          ),
          actions,
        ),
        panel,
      );

      function toggleRoles(button) {
        const open = panel.hidden;
        panel.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        if (!open) return;
        panel.replaceChildren(
          ...roles
            .filter((r) => r.role_id !== "member")
            .map((role) => {
              const box = h("input", {
                type: "checkbox",
                "data-testid": "role-toggle",
                dataset: { role: role.role_id },
                checked: member.roles.includes(role.role_id),
                // Nobody grants a role at or above their own highest position.
                disabled: !(role.position < mine),
              });
              box.addEventListener("change", () => setRole(role, box));
              return h("label", { class: "role-toggle" }, box, roleChip(role));
            }),
        );
        panel.querySelector("input:not([disabled])")?.focus();
      }

      async function setRole(role, box) {
        ui.clearError();
        box.disabled = true;
        try {
          const updated = box.checked
            ? await ctx.api.grantRole(server.server_id, member.user_id, role.role_id)
            : await ctx.api.revokeRole(server.server_id, member.user_id, role.role_id);
          Object.assign(member, updated);
          chips.replaceChildren(
            ...member.roles
              .map((id) => rolesById.get(id))
              .filter((r) => r && r.role_id !== "member")
              .map(roleChip),
          );
          await ctx.refresh(server.server_id);
        } catch (err) {
          console.warn("role change failed", err);
          box.checked = !box.checked;
          ui.showError(err);
        } finally {
          box.disabled = false;
        }
      }
    };
    fill();
    return row;
  }

  function reasonField() {
    const reason = h("input", { type: "text", maxlength: 500, "data-testid": "reason", autocomplete: "off" });
    return { reason, el: field("Reason (optional)", reason, "Kept in the server's history.") };
  }

  async function kick(member) {
    const { reason, el } = reasonField();
    const name = member.display_name || member.user_id;
    const done = await confirmDialog({
      title: `Kick ${name} from ${server.name}`,
      message: `${name} will be removed from every channel. They can rejoin with a new invite.`,
      confirmLabel: "Kick",
      danger: true,
      testid: "kick-dialog",
      extra: el,
      action: () => ctx.api.kick(server.server_id, member.user_id, reason.value.trim()),
    });
    if (done) removeRow(member);
  }

  async function ban(member) {
    const { reason, el } = reasonField();
    const name = member.display_name || member.user_id;
    const done = await confirmDialog({
      title: `Ban ${name}`,
      message: `${name} will be removed from every channel of ${server.name} and won't be able to join again until the ban is lifted.`,
      confirmLabel: "Ban",
      danger: true,
      testid: "ban-dialog",
      extra: el,
      action: () => ctx.api.ban(server.server_id, member.user_id, reason.value.trim()),
    });
    if (done) removeRow(member);
  }

  async function removeRow(member) {
    list.querySelector(`[data-user-id="${CSS.escape(member.user_id)}"]`)?.remove();
    await ctx.refresh(server.server_id);
  }

  function filter() {
    const needle = search.value.trim().toLowerCase();
    for (const row of list.children) {
      row.hidden = Boolean(needle) && !row.textContent.toLowerCase().includes(needle);
    }
  }

  async function loadPage() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    try {
      const page = await ctx.api.listMembers(server.server_id, { limit: PAGE_SIZE, from: next ?? undefined });
      list.append(...page.members.map(renderMember));
      next = page.next ?? null;
      more.hidden = !next;
      filter();
    } catch (err) {
      console.warn("members failed to load", err);
      ui.showError(err);
    } finally {
      loading = false;
      more.disabled = false;
    }
  }

  loadPage();
  return ui;
}
