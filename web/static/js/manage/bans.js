// The bans dialog: who is banned from a server, with the reason, and a way to lift each ban.
// Shown to holders of ban_members; the bridge refuses the list and the unban to anyone else.

import { h } from "../dom.js";
import { resolveContext } from "./context.js";
import { confirmDialog, initials, openDialog } from "./dialog.js";

/** The bans of a server (`GET /servers/{sid}/bans`), each with an Unban button. */
export function openBans(rawCtx, server) {
  const ctx = resolveContext(rawCtx);
  const list = h("ul", { class: "manage-list ban-list", "data-testid": "ban-list" });
  const empty = h("p", { class: "muted", "data-testid": "bans-empty", text: "Nobody is banned from this server." });
  empty.hidden = true;
  const ui = openDialog({
    title: "Bans",
    subtitle: server.name,
    testid: "bans-dialog",
    size: "wide",
    body: [list, empty],
    footer: [h("button", { type: "button", class: "button link", text: "Done", onclick: () => ui.close() })],
  });

  function renderBan(ban) {
    return h(
      "li",
      { class: "manage-row ban-row", "data-testid": "ban-row", dataset: { userId: ban.user_id } },
      h(
        "div",
        { class: "manage-row-line" },
        h("div", { class: "avatar", "aria-hidden": "true", text: initials(ban.user_id.slice(1)).slice(0, 1).toUpperCase() }),
        h(
          "div",
          { class: "manage-row-main" },
          h("span", { class: "member-name", "data-testid": "ban-user", text: ban.user_id }),
          h("span", {
            class: "muted ban-reason",
            "data-testid": "ban-reason",
            text: ban.reason ? `Reason: ${ban.reason}` : "No reason given",
          }),
        ),
        h(
          "div",
          { class: "manage-row-actions" },
          h("button", {
            type: "button",
            class: "button small",
            "data-testid": "ban-lift",
            text: "Unban",
            onclick: () => unban(ban),
          }),
        ),
      ),
    );
  }

  async function unban(ban) {
    const done = await confirmDialog({
      title: `Unban ${ban.user_id}`,
      message: `${ban.user_id} will be able to join ${server.name} again with an invite.`,
      confirmLabel: "Unban",
      testid: "unban-dialog",
      action: () => ctx.api.unban(server.server_id, ban.user_id),
    });
    if (!done) return;
    list.querySelector(`[data-user-id="${CSS.escape(ban.user_id)}"]`)?.remove();
    empty.hidden = list.children.length > 0;
    await ctx.refresh(server.server_id);
  }

  async function load() {
    try {
      const bans = await ctx.api.listBans(server.server_id);
      list.replaceChildren(...bans.map(renderBan));
      empty.hidden = bans.length > 0;
    } catch (err) {
      console.warn("bans failed to load", err);
      ui.showError(err);
    }
  }

  load();
  return ui;
}
