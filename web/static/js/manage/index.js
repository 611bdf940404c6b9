// The management dialogs, for the shell's menus. Each takes a context `ctx` (see context.js:
// the session, optionally the API and Matrix clients, and `refresh(serverId)` to reload a server
// after a change) and shows its controls only to those allowed; the server enforces it again.

import { openBans } from "./bans.js";
import { openCategoryEditor, openChannelEditor } from "./channels.js";
import { openInvitePeople } from "./invites.js";
import { openMembers } from "./members.js";
import { openRoles } from "./roles.js";
import { confirmDelete, confirmLeave, openCreateServer, openServerSettings } from "./servers.js";

export { can, isOwner, joinWithInvite, manageEntries, resolveContext } from "./context.js";
export { confirmDialog, openDialog, serverIcon } from "./dialog.js";
export {
  confirmDelete,
  openBans,
  confirmLeave,
  openCategoryEditor,
  openChannelEditor,
  openCreateServer,
  openInvitePeople,
  openMembers,
  openRoles,
  openServerSettings,
};

/** Open the dialog behind one of `manageEntries(ctx, server)`'s ids. */
export function openEntry(ctx, server, id) {
  switch (id) {
    case "invite":
      return openInvitePeople(ctx, server);
    case "settings":
      return openServerSettings(ctx, server);
    case "roles":
      return openRoles(ctx, server);
    case "members":
      return openMembers(ctx, server);
    case "bans":
      return openBans(ctx, server);
    case "create-channel":
      return openChannelEditor(ctx, server);
    case "create-category":
      return openCategoryEditor(ctx, server);
    case "leave":
      return confirmLeave(ctx, server);
    case "delete":
      return confirmDelete(ctx, server);
    default:
      throw new Error(`unknown management entry ${id}`);
  }
}
