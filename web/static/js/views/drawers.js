// The drawers of a small screen: app.css folds the rail and sidebar ("nav-open") and the member
// list ("members-open") away, and one at a time slides over the chat.

// Below this width app.css has no column for the member list: it opens as a drawer instead.
const DRAWER_MEMBERS_QUERY = "(max-width: 1100px)";

/**
 * @param {HTMLElement} shell  the element whose classes open the drawers
 */
export function createDrawers(shell) {
  /** @type {Map<string, HTMLElement>} drawer class → the button that opens it */
  const toggles = new Map();

  /** Open one drawer ("nav-open" or "members-open") and close the other, or close both. */
  function set(name) {
    for (const cls of ["nav-open", "members-open"]) {
      shell.classList.toggle(cls, cls === name);
      toggles.get(cls)?.setAttribute("aria-expanded", String(cls === name));
    }
  }

  shell.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && shell.matches(".nav-open, .members-open")) set(null);
  });

  return {
    set,
    /** Open a drawer, or close it when it is open. */
    toggle: (name) => set(shell.classList.contains(name) ? null : name),
    /** The member list's button: beside the chat on a wide window; a drawer over it where the list has no room. */
    toggleMembers() {
      if (window.matchMedia(DRAWER_MEMBERS_QUERY).matches) set(shell.classList.contains("members-open") ? null : "members-open");
      else shell.classList.toggle("members-hidden");
    },
    /** A server picked: on a phone the menu stays open on it, to choose one of its channels. */
    keepNav: () => set(shell.classList.contains("nav-open") ? "nav-open" : null),
    /** The button that opens a drawer: its aria-expanded follows. */
    bind(name, button) {
      toggles.set(name, button);
    },
  };
}
