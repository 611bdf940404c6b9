// The composer's @ autocomplete: members (name and user id), the server's roles and @room (for
// those allowed to notify everyone), picked with the arrows and Enter or Tab, or a click. What is
// picked is remembered so the message sent carries it in `m.mentions` (mentions.js).

import { avatar } from "../avatar.js";
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { mayMentionRoom, mentionCandidates, mentionContent, mentionQuery, pickOf } from "../mentions.js";

/**
 * @typedef {{members: Array<{userId: string, name: string, avatar?: string|null}>,
 *   roles: Array<{roleId: string, name: string, color?: string|null, holders: string[]}>,
 *   mayMentionRoom: boolean}} MentionSources
 */

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client  for avatars
 * @param {HTMLTextAreaElement} options.input
 * @param {HTMLElement} options.form  the composer: its keys are seen before the input's own
 * @param {string} options.userId
 * @param {() => MentionSources} options.sources
 */
export function attachMentionAutocomplete({ client, input, form, userId, sources }) {
  /** @type {import("../mentions.js").Pick[]} */
  let picks = [];
  let candidates = [];
  let selected = 0;
  let query = null;

  const list = h("ul", { class: "mention-list", role: "listbox", "data-testid": "mention-autocomplete", "aria-label": "Mention" });
  const box = h("div", { class: "mention-popup" }, list);
  box.hidden = true;
  form.prepend(box);
  input.setAttribute("aria-autocomplete", "list");

  function close() {
    box.hidden = true;
    query = null;
    candidates = [];
    input.removeAttribute("aria-activedescendant");
  }

  function update() {
    query = mentionQuery(input.value, input.selectionStart ?? input.value.length);
    if (!query) return close();
    const found = sources();
    candidates = mentionCandidates(query.query, {
      members: found.members.filter((m) => m.userId !== userId),
      roles: found.roles,
      mayMentionRoom: found.mayMentionRoom,
    });
    if (candidates.length === 0) return close();
    selected = Math.min(selected, candidates.length - 1);
    draw(found);
    box.hidden = false;
  }

  function draw(found) {
    const avatars = new Map(found.members.map((m) => [m.userId, m.avatar ?? null]));
    list.replaceChildren(
      ...candidates.map((c, i) => {
        const lead =
          c.kind === "user"
            ? avatar(client, { mxc: avatars.get(c.userId) ?? null, name: c.label, id: c.userId, size: 24 })
            : h("span", { class: "mention-kind", "aria-hidden": "true" }, icon(c.kind === "role" ? "shield" : "at-sign", { size: 18 }));
        const label = h("span", { class: "mention-label", text: c.kind === "user" ? c.label : `@${c.label}` });
        if (c.kind === "role" && c.color) label.style.color = c.color;
        const item = h(
          "li",
          {
            id: `mention-option-${i}`,
            class: `mention-option${i === selected ? " selected" : ""}`,
            role: "option",
            "aria-selected": String(i === selected),
            "data-testid": "mention-option",
            "data-kind": c.kind,
            "data-value": c.kind === "user" ? c.userId : c.kind === "role" ? c.roleId : "room",
            // Pressed, not clicked: a click would blur the composer first.
            onmousedown: (e) => {
              e.preventDefault();
              choose(i);
            },
          },
          lead,
          label,
          h("span", { class: "mention-detail muted", text: c.detail }),
        );
        return item;
      }),
    );
    input.setAttribute("aria-activedescendant", `mention-option-${selected}`);
  }

  function choose(index) {
    const candidate = candidates[index];
    if (!candidate || !query) return;
    const pick = pickOf(candidate);
    const end = input.selectionStart ?? input.value.length;
    const text = `${pick.text} `;
    input.value = input.value.slice(0, query.start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = query.start + text.length;
    picks.push(pick);
    close();
    input.focus();
    input.dispatchEvent(new Event("input"));
  }

  // On the form, capturing: before the input's own Enter (send) and arrow (edit) handling.
  form.addEventListener(
    "keydown",
    (event) => {
      if (event.target !== input || box.hidden || event.isComposing) return;
      const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
      if (move) {
        selected = (selected + move + candidates.length) % candidates.length;
        draw(sources());
      } else if (event.key === "Enter" || event.key === "Tab") {
        choose(selected);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );
  input.addEventListener("input", () => {
    selected = 0;
    update();
  });
  input.addEventListener("click", update);
  input.addEventListener("blur", close);

  return {
    /** The content of the message typed as `text`, with its mentions; `replyTo`'s sender is
     * mentioned too, as the spec asks of replies. */
    content(text, replyTo = null) {
      const found = sources();
      return mentionContent(text, {
        picks,
        knownUsers: new Set(found.members.map((m) => m.userId)),
        sender: userId,
        mayMentionRoom: found.mayMentionRoom,
        replyTo: replyTo?.sender ?? null,
      });
    },
    /** Forget the picks (the message was sent). */
    reset() {
      picks = [];
      close();
    },
  };
}

/**
 * What a channel's autocomplete offers: the server's members and roles when the channel is a
 * server's (`people`), else the room's joined members; @room when the user's power allows it.
 * @param {import("../sync.js").Room | null} room
 * @param {string} userId
 * @param {{members: Array<{user_id: string, display_name?: string|null, avatar?: string|null, roles?: string[]}>,
 *   roles: Array<{role_id: string, name: string, color?: string|null}>} | null} people
 * @returns {MentionSources}
 */
export function mentionSourcesFor(room, userId, people) {
  const members = people
    ? people.members.map((m) => ({
        userId: m.user_id,
        name: m.display_name || m.user_id.replace(/^@/, "").split(":")[0],
        avatar: m.avatar ?? null,
      }))
    : (room?.stateOfType("m.room.member") ?? [])
        .filter((e) => e.content?.membership === "join")
        .map((e) => ({ userId: e.state_key, name: room.displayName(e.state_key), avatar: room.avatarOf(e.state_key) }));
  // "member" is everyone on the server: @room says that, for those allowed to.
  const roles = (people?.roles ?? [])
    .filter((r) => r.role_id !== "member")
    .map((r) => ({
      roleId: r.role_id,
      name: r.name,
      color: r.color ?? null,
      holders: people.members.filter((m) => m.roles?.includes(r.role_id)).map((m) => m.user_id),
    }));
  return { members, roles, mayMentionRoom: room ? mayMentionRoom(room, userId) : false };
}
