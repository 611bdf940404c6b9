// Being in the categories of the server one looks at, so changes made there show live.
//
// A category is a sub-space (docs/DESIGN.md): its channels' order, and its name, are state of
// the category's own room. Guilds joins members to channels, not to categories, and a sync only
// brings the state of rooms one is in; without this, a channel moved within a category, or a
// category renamed, would show to others only at their next reload. A category's join rule
// lets every member of the server in (restricted to the space), as a Matrix client joins a
// sub-space to follow it. Each category is tried once per page; a refusal is left alone (the
// sidebar still shows what the provisioning API answers on the next refresh).

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {{room: (roomId: string) => any}} options.sync
 * @returns {(server: any) => void}  call with the server shown; joins what it is not in yet
 */
export function createCategoryFollower({ client, sync }) {
  const tried = new Set();
  let queue = Promise.resolve();
  return function follow(server) {
    for (const category of server?.categories ?? []) {
      const roomId = category.category_id;
      if (tried.has(roomId) || sync.room(roomId)) continue;
      tried.add(roomId);
      // One join at a time: they count against the homeserver's join rate limit.
      queue = queue.then(() =>
        client.joinRoom(roomId).catch((error) => console.warn("could not follow a category", roomId, error)),
      );
    }
  };
}
