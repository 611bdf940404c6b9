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

/** Syncs until every room of `roomIds` is known (or throws after `deadlineMs`). */
async function syncedRooms(client, roomIds, deadlineMs = 30_000) {
  const prepared = new Promise((resolve) =>
    client.on("sync", (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    }),
  );
  await client.startClient({ initialSyncLimit: 1 });
  await prepared;
  const end = Date.now() + deadlineMs;
  for (const roomId of roomIds) {
    while (!client.getRoom(roomId)) {
      if (Date.now() > end) throw new Error(`room ${roomId} never arrived in the sync`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return roomIds.map((roomId) => client.getRoom(roomId));
}

/** Syncs until the room is known, then answers it (or throws after `deadline_ms`). */
async function syncedRoom(client, roomId, deadlineMs = 30_000) {
  return (await syncedRooms(client, [roomId], deadlineMs))[0];
}

/** The room's MatrixRTC call memberships as 37.5's MatrixRTCSession parses them. */
async function rtc_memberships(client, { room_id }) {
  const { MatrixRTCSession } = await import("matrix-js-sdk/lib/matrixrtc/index.js");
  const room = await syncedRoom(client, room_id);
  return MatrixRTCSession.callMembershipsForRoom(room).map((m) => ({
    user_id: m.sender ?? null,
    device_id: m.deviceId,
    expired: m.isExpired(),
    expiry: m.getAbsoluteExpiry() ?? null,
  }));
}

/** Whether this `m.space.child` content links its child (a link without `via` was removed). */
function links(content) {
  return Array.isArray(content?.via) && content.via.length > 0;
}

/**
 * The user's rooms as other clients' room lists filter them, once every room of `room_ids` has
 * arrived in the sync: Element's (the SDK's `getVisibleRooms()`, then its room-list
 * VisibilityProvider: no spaces), Cinny's Home (rooms, not spaces, that no joined space links,
 * and not DMs), and the spaces both show at the top of their space bars (joined spaces that no
 * joined space links).
 */
async function room_list(client, { room_ids }) {
  await syncedRooms(client, room_ids);
  const joined = client.getRooms().filter((room) => room.getMyMembership() === "join");
  const linked = new Set();
  for (const space of joined.filter((room) => room.isSpaceRoom())) {
    for (const event of space.currentState.getStateEvents("m.space.child")) {
      if (links(event.getContent())) linked.add(event.getStateKey());
    }
  }
  const direct = new Set(Object.values(client.getAccountData("m.direct")?.getContent() ?? {}).flat());
  const element = client
    .getVisibleRooms()
    .filter((room) => ["join", "invite"].includes(room.getMyMembership()))
    .filter((room) => !room.isSpaceRoom());
  const cinnyHome = joined.filter(
    (room) => room.getType() !== "m.space" && !linked.has(room.roomId) && !direct.has(room.roomId),
  );
  const topSpaces = joined.filter((room) => room.isSpaceRoom() && !linked.has(room.roomId));
  const describe = (room) => ({ room_id: room.roomId, name: room.name, type: room.getType() ?? null });
  return {
    element: element.map(describe),
    cinny_home: cinnyHome.map(describe),
    top_spaces: topSpaces.map(describe),
    joined: joined.map(describe),
  };
}

/**
 * A channel's pinned messages as Element reads and writes them with the SDK: the ids in
 * `m.room.pinned_events`, whether the SDK would offer this user to pin (Element shows its pin
 * option only when `mayClientSendStateEvent` says so), and, given `pin`, that event pinned last
 * as Element pins (answers the homeserver's errcode if it refuses).
 */
async function pinned_events(client, { room_id, pin = null }) {
  const room = await syncedRoom(client, room_id);
  const pinned = room.currentState.getStateEvents("m.room.pinned_events", "")?.getContent()?.pinned ?? [];
  const mayPin = room.currentState.mayClientSendStateEvent("m.room.pinned_events", client);
  let refused = null;
  if (pin) {
    try {
      await client.sendStateEvent(room_id, "m.room.pinned_events", { pinned: [...pinned.filter((id) => id !== pin), pin] }, "");
    } catch (error) {
      refused = error?.errcode ?? String(error);
    }
  }
  return { pinned, may_pin: mayPin, refused };
}

/**
 * Whether the SDK's push processor (the one under Element) highlights each event for this user:
 * how another client reads a Guilds message's `m.mentions` (spec v1.7 intentional mentions).
 */
async function mention_actions(client, { room_id, event_ids }) {
  const { MatrixEvent } = await import("matrix-js-sdk");
  await syncedRoom(client, room_id);
  const answer = {};
  for (const eventId of event_ids) {
    const raw = await client.fetchRoomEvent(room_id, eventId);
    const actions = client.getPushActionsForEvent(new MatrixEvent({ ...raw, room_id }), true);
    answer[eventId] = { notify: Boolean(actions?.notify), highlight: Boolean(actions?.tweaks?.highlight) };
  }
  return answer;
}

/**
 * What the SDK holds of a space's links once synced, and what it learns of one room by id: each
 * `m.space.child` state key with whether it still links (clients skip a link without `via`), and
 * for `probe`, its name and topic as the SDK knows the room (null when it does not) and the
 * errcode of a join.
 */
async function space_links(client, { space_id, probe }) {
  const space = await syncedRoom(client, space_id);
  const children = space.currentState
    .getStateEvents("m.space.child")
    .map((event) => ({ state_key: event.getStateKey(), linked: links(event.getContent()) }));
  const room = client.getRoom(probe);
  let joinRefused = null;
  try {
    await client.joinRoom(probe);
  } catch (error) {
    joinRefused = error?.errcode ?? String(error);
  }
  return {
    children,
    probe_known: Boolean(room),
    probe_membership: room?.getMyMembership() ?? null,
    probe_name: room?.currentState.getStateEvents("m.room.name", "")?.getContent()?.name ?? null,
    probe_topic: room?.currentState.getStateEvents("m.room.topic", "")?.getContent()?.topic ?? null,
    join_refused: joinRefused,
  };
}

export const scenarios = { hierarchy, rtc_memberships, room_list, mention_actions, pinned_events, space_links };

/**
 * Thread `root_id` of a room as the SDK's own thread support reads it, once it holds at least
 * `replies` replies: the thread, each reply's thread root, and whether any of them shows in the
 * room's main timeline (a thread-aware client shows them only in the thread).
 */
async function thread(client, { room_id, root_id, replies: wanted, deadline_ms = 30_000 }) {
  const prepared = new Promise((resolve) =>
    client.on("sync", (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    }),
  );
  await client.startClient({ initialSyncLimit: 20, threadSupport: true });
  await prepared;
  const end = Date.now() + deadline_ms;
  const pause = () => new Promise((resolve) => setTimeout(resolve, 200));
  let room;
  while (!(room = client.getRoom(room_id))) {
    if (Date.now() > end) throw new Error(`room ${room_id} never arrived in the sync`);
    await pause();
  }
  const replies = () =>
    (room.getThread(root_id)?.timeline ?? []).filter((event) => event.getId() !== root_id);
  while (replies().length < wanted) {
    if (Date.now() > end) {
      throw new Error(`thread ${root_id} has ${replies().length} of ${wanted} replies in the SDK`);
    }
    await pause();
  }
  const found = room.getThread(root_id);
  const main = new Set(room.getLiveTimeline().getEvents().map((event) => event.getId()));
  return {
    thread_id: found.id,
    root_is_thread_root: found.rootEvent?.isThreadRoot ?? null,
    length: found.length,
    replies: replies().map((event) => ({
      event_id: event.getId(),
      sender: event.getSender(),
      body: event.getContent().body ?? null,
      thread_root_id: event.threadRootId ?? null,
      in_main_timeline: main.has(event.getId()),
    })),
  };
}

scenarios.thread = thread;
