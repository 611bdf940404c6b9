// The server's menu under its name in the sidebar (invite, settings, roles, members, bans,
// channels, mute, leave or delete), and the management dialogs it opens (manage/, loaded when
// first needed).

import { hasPermission as has } from "../store.js";
import { muteMenuEntry } from "./mute.js";
import { showMenu } from "./popups.js";

/** @type {Array<[string, string, (server: any, me: string) => boolean, {danger?: boolean}]>} */
const MENU_ENTRIES = [
  ["Invite people", "openInvitePeople", (s) => has(s, "create_invites"), {}],
  ["Server settings", "openServerSettings", (s) => has(s, "manage_server"), {}],
  ["Roles", "openRoles", (s) => has(s, "manage_roles"), {}],
  ["Members", "openMembers", (s) => has(s, "kick_members") || has(s, "ban_members") || has(s, "manage_roles"), {}],
  ["Bans", "openBans", (s) => has(s, "ban_members"), {}],
  ["Create channel", "openChannelEditor", (s) => has(s, "manage_channels"), {}],
  ["Create category", "openCategoryEditor", (s) => has(s, "manage_channels"), {}],
  ["Leave server", "confirmLeave", (s, me) => s.owner !== me, { danger: true }],
  ["Delete server", "confirmDelete", (s, me) => s.owner === me, { danger: true }],
];

/** The management dialogs, when that module is installed; null when it is not. */
let manageModule;
export function loadManage() {
  manageModule ??= import("../manage/index.js").catch(() => null);
  return manageModule;
}

/**
 * Open the menu of the server open, under `anchor`.
 * @param {HTMLElement} anchor
 * @param {object} options
 * @param {import("../store.js").ShellStore} options.store
 * @param {string} options.userId
 * @param {ReturnType<typeof import("../notifications.js").createNotifications>} options.notify
 * @param {() => object} options.manageContext  what the dialogs are given (views/home.js)
 * @param {(message: string) => void} options.showBanner
 */
export async function openServerMenu(anchor, { store, userId, notify, manageContext, showBanner }) {
  const server = store.activeServer();
  if (!server) return;
  const manage = await loadManage();
  /** @type {Array<[string, () => void, {danger?: boolean, testid?: string}]>} */
  const entries = [];
  for (const [label, fn, allowed, options] of MENU_ENTRIES) {
    if (!manage || typeof manage[fn] !== "function" || !allowed(server, userId)) continue;
    const testid = `menu-${fn}`;
    entries.push([label, () => manage[fn](manageContext(), store.state.servers.get(server.server_id) ?? server), { ...options, testid }]);
  }
  // Everyone may mute a server: before leaving or deleting it, as in Discord.
  const danger = entries.findIndex(([, , options]) => options.danger);
  entries.splice(danger < 0 ? entries.length : danger, 0, muteMenuEntry(notify, server, (message) => showBanner(message)));
  showMenu(anchor, entries, { testid: "server-menu" });
}
