// Sending in a room: a local echo at once, then the room's send queue (send-queue.js) sends in
// order, one at a time, waiting out rate limits; a message not sent can be sent again.

import { describeError } from "../error-messages.js";
import { newTxnId } from "../matrix.js";
import { SendQueue } from "../send-queue.js";

/**
 * @param {import("./chat.js").ChatContext} ctx
 */
export function createRoomSender(ctx) {
  const { client, sync, roomId } = ctx;

  /** Send with a local echo at once; the room's queue sends in order (send-queue.js). */
  function send(type, content) {
    const r = ctx.room();
    if (!r) return null;
    const message = queueOf(r).enqueue(type, content, { txnId: newTxnId() });
    if (type === "m.room.message" && !content["m.relates_to"]?.rel_type) r.pending.push(message);
    sync.touch(roomId);
    return message;
  }

  /**
   * The room's send queue: kept on the room, so leaving the channel neither stops nor reorders
   * it; the view open on the room is the one told of changes.
   */
  function queueOf(r) {
    r.sendQueue ??= new SendQueue({
      // The queue waits out 429s itself, one message at a time.
      send: (message) =>
        client.sendEvent(roomId, message.type, message.content, message.txnId, { retryRateLimits: false }),
    });
    r.sendQueue.onChange = (message) => {
      if (message.status === "sent" && r.ids.has(message.eventId)) {
        r.pending = r.pending.filter((p) => p !== message);
      }
      if (!ctx.destroyed && message.status === "failed") ctx.showError(describeError(message.error));
      if (!ctx.destroyed && message.status === "sent") ctx.showError("");
      sync.touch(roomId);
    };
    return r.sendQueue;
  }

  /** Send a message that was not sent again: after the others, where its echo now stands. */
  function retry(message) {
    const r = ctx.room();
    r.pending = [...r.pending.filter((p) => p !== message), message];
    queueOf(r).retry(message);
  }

  return {
    send,
    retry,
    /** Send again a thread reply that was not sent (its echo is in the thread panel). */
    retryInThread: (message) => queueOf(ctx.room()).retry(message),
  };
}
