// Channel names as Discord writes them: a text channel's name is lower case with dashes for
// spaces ("Book Club" → "book-club"); voice and video channels keep the name as typed. A
// convention of this client's editor, not a rule of the server: Matrix room names are free text
// that any client may set, so the bridge accepts them as they are.

/**
 * The name as it is being typed: lower case, each run of spaces one dash (a trailing dash stays,
 * so the next word can follow it).
 * @param {string} value
 * @param {string} kind  "text", "voice" or "video"
 */
export function channelNameAsTyped(value, kind) {
  if (kind !== "text") return value;
  return value.toLowerCase().replace(/\s+/g, "-").replace(/-{2,}/g, "-");
}

/** The name to save: as typed, then without dashes or spaces at either end. */
export function normalizeChannelName(value, kind) {
  const typed = channelNameAsTyped(value.trim(), kind);
  return kind === "text" ? typed.replace(/^-+|-+$/g, "") : typed;
}
