// What every management dialog is given (`ctx`), and the permission checks that decide which
// controls appear. The server enforces every rule again: these only hide what would be refused.

import { GuildsApi } from "../guilds-api.js";
import { MatrixClient, MatrixError } from "../matrix.js";

/**
 * @typedef {object} ManageContext
 * @property {{userId: string, accessToken: string, homeserverUrl: string}} session
 * @property {GuildsApi} [api]  the provisioning API client (built from the session if absent)
 * @property {MatrixClient} [matrix]  the user's Matrix client (built from the session if absent)
 * @property {(serverId: string) => unknown} [refresh]  reload a server after a change
 * @property {(serverId: string) => unknown} [selectServer]  show a server (after create or join)
 * @property {(serverId: string) => unknown} [onServerGone]  after leaving or deleting a server
 * @property {(serverId: string, channelId: string) => unknown} [openChannel]  show a channel just made
 */

/** Fill in what the caller left out, so a dialog can rely on every field. */
export function resolveContext(ctx) {
  if (!ctx?.session) throw new TypeError("a management dialog needs ctx.session");
  const { session } = ctx;
  return {
    ...ctx,
    session,
    userId: session.userId,
    api: ctx.api ?? GuildsApi.forSession(session),
    matrix:
      ctx.matrix ??
      new MatrixClient({ baseUrl: session.homeserverUrl, accessToken: session.accessToken }),
    refresh: async (serverId) => {
      try {
        await ctx.refresh?.(serverId);
      } catch (err) {
        console.warn("refresh after a change failed", err);
      }
    },
    selectServer: (serverId) => ctx.selectServer?.(serverId),
    onServerGone: (serverId) => ctx.onServerGone?.(serverId),
    openChannel: (serverId, channelId) => ctx.openChannel?.(serverId, channelId),
  };
}

export const PERMISSIONS = [
  ["manage_server", "Manage server", "Change the server's name, topic and icon."],
  ["manage_channels", "Manage channels", "Create, edit and delete channels and categories."],
  ["manage_roles", "Manage roles", "Create and edit roles below their own, and give them out."],
  ["kick_members", "Kick members", "Remove members (they can come back with an invite)."],
  ["ban_members", "Ban members", "Remove members for good and lift bans."],
  ["create_invites", "Create invites", "Make, list and revoke invite links."],
  ["manage_messages", "Manage messages", "Delete other members' messages, pin and unpin messages."],
  ["send_messages", "Send messages", "Write in text channels."],
  ["connect", "Connect", "Join voice and video calls."],
  ["video", "Video", "Share a camera in calls."],
];

export function can(server, permission) {
  return Array.isArray(server?.me?.permissions) && server.me.permissions.includes(permission);
}

export function isOwner(ctx, server) {
  return Boolean(server) && server.owner === (ctx.userId ?? ctx.session?.userId);
}

/** The caller's rank for the hierarchy rules: the owner outranks everyone. */
export function myPosition(ctx, server) {
  if (isOwner(ctx, server)) return Number.POSITIVE_INFINITY;
  return highestPosition(server, server?.me?.roles ?? []);
}

export function highestPosition(server, roleIds) {
  let best = Number.NEGATIVE_INFINITY;
  for (const role of server?.roles ?? []) {
    if (roleIds.includes(role.role_id)) best = Math.max(best, role.position);
  }
  return best;
}

/** Roles sorted as Discord lists them: most senior first. */
export function sortedRoles(roles) {
  return [...(roles ?? [])].sort((a, b) => b.position - a.position || a.role_id.localeCompare(b.role_id));
}

/**
 * The management entries the caller may use on this server, for the shell's menus, in order.
 * Each is `{id, label, danger?}`; open one with `openEntry(ctx, server, id)` from index.js.
 */
export function manageEntries(ctx, server) {
  const me = resolveContext(ctx);
  const owner = isOwner(me, server);
  const entries = [];
  if (can(server, "create_invites")) entries.push({ id: "invite", label: "Invite people" });
  if (can(server, "manage_server")) entries.push({ id: "settings", label: "Server settings" });
  if (can(server, "manage_roles")) entries.push({ id: "roles", label: "Roles" });
  if (["manage_roles", "kick_members", "ban_members"].some((p) => can(server, p))) {
    entries.push({ id: "members", label: "Members" });
  }
  if (can(server, "ban_members")) entries.push({ id: "bans", label: "Bans" });
  if (can(server, "manage_channels")) {
    entries.push({ id: "create-channel", label: "Create channel" });
    entries.push({ id: "create-category", label: "Create category" });
  }
  if (owner) entries.push({ id: "delete", label: "Delete server", danger: true });
  else entries.push({ id: "leave", label: "Leave server", danger: true });
  return entries;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Redeem an invite code and join the space with the user's own Matrix client; resolves the
 * server id once the provisioning API sees the user as a member (it learns by transaction).
 */
export async function joinWithInvite(ctx, code, { deadlineMs = 15_000 } = {}) {
  const { server_id: serverId } = await ctx.api.redeemInvite(code);
  await ctx.matrix.joinRoom(serverId);
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      await ctx.api.getServer(serverId);
      return serverId;
    } catch (err) {
      const notYet = err instanceof MatrixError && err.errcode === "M_NOT_FOUND";
      if (!notYet || Date.now() > deadline) throw err;
    }
    await sleep(200);
  }
}
