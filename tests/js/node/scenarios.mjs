// The scenarios node/scenario.mjs can run: each takes a logged-in MatrixClient (37.5) and the
// JSON input, and answers plain JSON for the Python test to check.

/** The key under which Guilds writes a channel's kind into its `m.space.child` content. */
export const CHANNEL_KIND_KEY = "chat.guilds.kind";

/**
 * The space's hierarchy as the SDK pages through it, before joining any channel: every room
 * with its room type, and for each child the content of the link that names it (where a
 * client reads the kind).
 */
async function hierarchy(client, { space_id }) {
  const rooms = [];
  let from;
  do {
    const page = await client.getRoomHierarchy(space_id, 50, undefined, false, from);
    rooms.push(...page.rooms);
    from = page.next_batch;
  } while (from);
  const links = new Map();
  for (const room of rooms) {
    for (const event of room.children_state ?? []) {
      if (event.type === "m.space.child") links.set(event.state_key, event.content ?? {});
    }
  }
  const joined = new Set((await client.getJoinedRooms()).joined_rooms);
  return rooms.map((room) => ({
    room_id: room.room_id,
    name: room.name ?? null,
    room_type: room.room_type ?? null,
    kind: links.get(room.room_id)?.[CHANNEL_KIND_KEY] ?? null,
    joined: joined.has(room.room_id),
  }));
}

export const scenarios = { hierarchy };
