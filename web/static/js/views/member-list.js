// The open server's member list, as in Discord: grouped under each member's highest role,
// names in their role's colour, presence dots, the owner's crown; a member opens their profile.

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { SELECTION_KEYS, memberName, roleColor } from "../store.js";

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../store.js").ShellStore} options.store
 * @param {ReturnType<typeof import("../presence.js").createPresence>} options.presence
 * @param {(anchor: Element, person: {userId: string, name: string, avatar: string|null}) => void} options.showProfile
 */
export function createMemberList({ client, store, presence, showProfile }) {
  const el = h("aside", { class: "members", "data-testid": "member-list", "aria-label": "Members" });

  function render() {
    const { activeServer: sid, members } = store.state;
    const server = store.activeServer();
    el.replaceChildren();
    // Whether dots are drawn: "off" when the homeserver has presence disabled (presence.js).
    el.dataset.presence = presence.enabled === null ? "unknown" : presence.enabled ? "on" : "off";
    if (!server) return;
    const list = members.get(sid) ?? [];
    const roles = [...(server.roles ?? [])].sort((a, b) => b.position - a.position);
    const groups = new Map();
    for (const member of list) {
      const top = roles.find((r) => member.roles.includes(r.role_id) && r.role_id !== "member") ?? null;
      const key = top?.role_id ?? "member";
      if (!groups.has(key)) groups.set(key, { role: top, members: [] });
      groups.get(key).members.push(member);
    }
    const ordered = [...groups.values()].sort((a, b) => (b.role?.position ?? -1e9) - (a.role?.position ?? -1e9));
    for (const group of ordered) {
      const label = group.role ? group.role.name : "Members";
      el.append(h("h3", { class: "member-group", text: `${label} — ${group.members.length}` }));
      const sorted = group.members.sort((a, b) => memberName(a).localeCompare(memberName(b)));
      for (const member of sorted) el.append(memberRow(sid, member));
    }
  }

  function memberRow(sid, member) {
    const name = h("span", { class: "member-name", "data-testid": "member-name", text: memberName(member) });
    const color = roleColor(store.state, sid, member.user_id);
    if (color) name.style.color = color;
    const open = (anchor) => showProfile(anchor, { userId: member.user_id, name: memberName(member), avatar: member.avatar });
    return h(
      "div",
      {
        class: "member",
        "data-testid": "member",
        "data-user-id": member.user_id,
        title: member.user_id,
        role: "button",
        tabindex: "0",
        onclick: (e) => open(e.currentTarget),
        onkeydown: (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            open(e.currentTarget);
          }
        },
      },
      presence.withDot(avatar(client, { mxc: member.avatar, name: memberName(member), id: member.user_id, size: 32 }), member.user_id),
      name,
      member.owner ? h("span", { class: "owner-mark", title: "Server owner", "data-testid": "owner-mark" }, icon("crown", { size: 14 })) : null,
    );
  }

  store.subscribe(render, [...SELECTION_KEYS, "members"]);
  return { el, render };
}
