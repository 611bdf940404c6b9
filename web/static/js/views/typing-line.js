// "Ann and Bob are typing…" under a chat, with the names of those typing fetched when the
// sync has not brought them.

import { h } from "../dom.js";

/**
 * @param {import("./chat.js").ChatContext} ctx
 */
export function createTypingLine(ctx) {
  const { client, roomId } = ctx;
  const el = h("div", { class: "typing", "data-testid": "typing", "aria-live": "polite" });
  const askedMembers = new Set(); // users whose member event was fetched for the typing line

  function render() {
    const r = ctx.room();
    (r?.typing ?? []).forEach(loadMember);
    const names = (r?.typing ?? []).map((u) => r.displayName(u));
    el.replaceChildren();
    if (names.length === 0) return;
    const who = names.length > 3 ? "Several people are" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"}`;
    el.append(h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("strong", { text: who.replace(/ (is|are)$/, "") }), ` ${who.endsWith("are") ? "are" : "is"} typing…`);
  }

  /** Fetch the member event of someone typing who has sent nothing lately: lazy loading has
   * not brought it, and without it they would show by their user id, not their name. */
  function loadMember(uid) {
    const r = ctx.room();
    if (!r || r.member(uid) || askedMembers.has(uid)) return;
    askedMembers.add(uid);
    client
      .getStateEvent(roomId, "m.room.member", uid)
      .then((content) => {
        if (!content || r.member(uid)) return;
        r.pastMembers.set(uid, { type: "m.room.member", state_key: uid, sender: uid, content });
        if (!ctx.destroyed) render();
      })
      .catch((error) => console.warn("member failed to load", error));
  }

  return { el, render };
}
