// Pinned messages: "Pin" and "Unpin" in a message's hover menu, and the header's pins panel
// listing the channel's pins newest first, live, each opening its message.
//
// Stored as Matrix does (`m.room.pinned_events`, pins.js), so pins made here show in Element
// and the other way round. Who may pin is the homeserver's rule (manage_messages, enforced by
// the power levels and the Guilds module; in a DM, the room's power levels: both people); the
// UI only leaves the action out for the others. A DM has its own pins button (views/dms.js).

import { h } from "../dom.js";
import { describeError } from "../error-messages.js";
import { icon } from "../icons.js";
import { plainPreview } from "../markdown.js";
import { PINNED_EVENTS, mayPinIn, newestFirst, pinnedIds, withPin, withoutPin } from "../pins.js";
import { createHeaderPanel } from "./header-panel.js";
import { openMessage, revealMessage } from "./jump.js";
import { messageSummary } from "./message-summary.js";

/**
 * Pin or unpin one message. The list is read from the homeserver just before it is written, so
 * a pin someone else made a moment ago is kept rather than overwritten by a stale copy.
 * @param {import("../matrix.js").MatrixClient} client
 */
export async function setPinned(client, roomId, eventId, pinned) {
  const current = await client.getStateEvent(roomId, PINNED_EVENTS);
  const next = pinned ? withPin(current, eventId) : withoutPin(current, eventId);
  await client.putState(roomId, PINNED_EVENTS, "", next);
}

/** The ids pinned in a room, as its synced state says. */
function pinsOf(room) {
  return pinnedIds(room?.getState(PINNED_EVENTS)?.content);
}

/**
 * The chat's hook for a channel's messages (views/chat.js `messageTools`): a Pin or Unpin action
 * for those who may pin, and the pin state in each message's signature so the menu follows it.
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {string} options.roomId
 * @param {() => boolean} options.mayPin
 */
export function pinTools({ client, sync, roomId, mayPin }) {
  const pinned = (event) => pinsOf(sync.room(roomId)).includes(event.event_id);
  return {
    /** @param {any} event @param {(message: string) => void} showError */
    actions(event, showError) {
      if (event.type !== "m.room.message" || !mayPin()) return [];
      const isPinned = pinned(event);
      return [
        {
          label: isPinned ? "Unpin message" : "Pin message",
          icon: isPinned ? "pin-off" : "pin",
          testid: isPinned ? "action-unpin" : "action-pin",
          onclick: () =>
            setPinned(client, roomId, event.event_id, !isPinned).catch((error) => showError(describeError(error))),
        },
      ];
    },
    signature: (event) => `${mayPin()}:${pinned(event)}`,
  };
}

/**
 * The header's pins button and panel for the open channel.
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {() => import("./channel-tools.js").Place | null} options.current  the open server and
 *   channel, or DM
 * @param {(serverId: string, userId: string) => string|null} options.roleColor
 */
export function createPinsButton({ client, sync, current, roleColor }) {
  const status = h("p", { class: "header-panel-status muted", "data-testid": "pins-status", role: "status" });
  const list = h("ol", { class: "summaries", "data-testid": "pins-list" });
  const panel = createHeaderPanel({ testid: "pins-panel", title: "Pinned messages" });
  panel.body.append(status, list);
  const button = h("button", {
    type: "button",
    class: "icon-button",
    "data-testid": "pins-button",
    title: "Pinned messages",
    "aria-label": "Pinned messages",
    onclick: () => (panel.isOpen ? panel.close() : show()),
  }, icon("pin"));
  /** @type {Map<string, any>} event id → the event as fetched (or an error) */
  const fetched = new Map();
  let shownRoom = null;
  let drawing = 0;

  function show() {
    panel.open();
    draw();
  }

  async function draw() {
    const here = current();
    if (!panel.isOpen || !here?.channel) return;
    const roomId = here.channel.channel_id;
    if (roomId !== shownRoom) {
      fetched.clear();
      shownRoom = roomId;
    }
    panel.setTitle(here.dm ? `Pinned messages with ${here.channel.name}` : `Pinned messages in #${here.channel.name}`);
    const room = sync.room(roomId);
    const ids = newestFirst(room?.getState(PINNED_EVENTS)?.content);
    const run = ++drawing;
    if (ids.length === 0) {
      status.textContent = `This ${here.dm ? "conversation" : "channel"} has no pinned messages yet.`;
      status.hidden = false;
      list.replaceChildren();
      return;
    }
    status.hidden = true;
    await Promise.all(ids.filter((id) => !fetched.has(id)).map((id) => fetchEvent(roomId, id)));
    if (run !== drawing || !panel.isOpen) return; // a newer draw took over
    const mayUnpin = here.dm ? mayPinIn(room, here.dm.userId) : Boolean(here.server?.me?.permissions?.includes("manage_messages"));
    list.replaceChildren(...ids.map((id) => pinItem(here, room, id, mayUnpin)));
  }

  async function fetchEvent(roomId, eventId) {
    const known = sync.room(roomId)?.byId.get(eventId);
    if (known) {
      fetched.set(eventId, known);
      return;
    }
    try {
      fetched.set(eventId, await client.getEvent(roomId, eventId));
    } catch (error) {
      fetched.set(eventId, { error });
    }
  }

  function pinItem(here, room, eventId, mayUnpin) {
    const event = fetched.get(eventId) ?? {};
    const roomId = here.channel.channel_id;
    const unpin = mayUnpin
      ? h("button", {
          type: "button",
          class: "icon-button summary-action",
          "data-testid": "pin-unpin",
          title: "Unpin",
          "aria-label": "Unpin",
          onclick: () => setPinned(client, roomId, eventId, false).catch((error) => {
            status.textContent = describeError(error);
            status.hidden = false;
          }),
        }, icon("pin-off", { size: 16 }))
      : null;
    const sender = typeof event.sender === "string" ? event.sender : "";
    return messageSummary({
      testid: "pin",
      eventId,
      author: sender ? (room?.displayName(sender) ?? sender) : "Unknown",
      authorColor: sender && here.server ? roleColor(here.server.server_id, sender) : null,
      ts: Number.isFinite(event.origin_server_ts) ? event.origin_server_ts : 0,
      ...pinText(room, event),
      onOpen: () => {
        panel.close();
        if (here.dm) revealMessage({ sync, roomId, eventId, reveal: here.dm.reveal });
        else openMessage({ sync, serverId: here.server.server_id, roomId, eventId });
      },
      extra: unpin,
    });
  }

  // Redrawn live: a pin made or removed anywhere arrives as the room's state in the sync.
  sync.addEventListener("update", (event) => {
    const roomId = current()?.channel?.channel_id;
    const types = /** @type {CustomEvent} */ (event).detail.state.get(roomId);
    if (panel.isOpen && types?.has(PINNED_EVENTS)) draw();
  });

  const el = h("span", { class: "pins-tool" }, button, panel.el);
  return {
    el,
    /** The open channel changed (or its server): a panel open shows the new one's pins. */
    update() {
      const here = current();
      el.hidden = !here?.channel;
      if (!here?.channel) panel.close();
      if (panel.isOpen && here?.channel?.channel_id !== shownRoom) draw();
    },
  };
}

/** What a pinned event shows: its latest text, or why there is none. */
function pinText(room, event) {
  if (event.error) return { body: "This message could not be loaded.", muted: true };
  const content = event.content ?? {};
  if (event.unsigned?.redacted_because || room?.redacted.has(event.event_id) || Object.keys(content).length === 0) {
    return { body: "This message was deleted.", muted: true };
  }
  const edit = room?.latestEdit(event)?.content?.["m.new_content"];
  const bundled = event.unsigned?.["m.relations"]?.["m.replace"]?.content?.["m.new_content"];
  const shown = edit ?? bundled ?? content;
  if (typeof shown.body !== "string") return { body: "This message has no text.", muted: true };
  return { body: plainPreview(shown), muted: false };
}
