// Channel calls through the SFU: Janus's VideoRoom plugin over its WebSocket API.
//
// The bridge hands out the credentials (`POST /servers/{sid}/channels/{cid}/sfu`, docs/API.md):
// the Janus URL, the channel's VideoRoom room id, a participant id it signed, a token for every
// Janus request and a token for joining that one room. They expire; the call asks again every
// minute and uses the newest token from then on, so someone who may no longer enter the channel
// is out of Janus soon even if a kick were missed.
//
// Each device publishes its microphone (and camera, in a video channel) on one "publisher"
// handle, and receives every other publisher on a "subscriber" handle of its own (one
// RTCPeerConnection per remote participant, as in the mesh, so the call panel and the tests read
// both alike). Who is in the call stays MatrixRTC membership in room state (group.js); Janus
// only carries the media. Participant ids name the Matrix user and device they were signed for
// (`base64url(user).base64url(device).nonce.mac`), which is how a feed finds its tile.

import { rtcConfiguration } from "./ice.js";
import { peerStats } from "./stats.js";

export const JANUS_FOCUS = "org.guilds.janus";
const PLUGIN = "janus.plugin.videoroom";
const KEEPALIVE_MS = 15_000;
const CREDENTIALS_REFRESH_MS = 60_000;
const REQUEST_TIMEOUT_MS = 20_000;
// Wait this long at most for our ICE candidates before sending a description (no trickle).
const GATHER_MS = 3_000;
// After the SFU went away: try again this often.
const RECONNECT_MS = 2_000;

/** The Matrix user and device a participant id was signed for, or null. */
export function participantOf(id) {
  const parts = String(id).split(".");
  if (parts.length !== 4) return null;
  try {
    const decode = (text) => {
      const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
      return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    };
    return { userId: decode(parts[0]), deviceId: decode(parts[1]) };
  } catch {
    return null;
  }
}

function transactionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Resolve once the connection has gathered its candidates (or after GATHER_MS). */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** One remote participant's media, received on a subscriber handle (the mesh Peer's shape). */
class SfuPeer {
  constructor(transport, feedId, who) {
    this.transport = transport;
    this.feedId = feedId;
    this.userId = who.userId;
    this.deviceId = who.deviceId;
    this.handleId = null;
    this.pc = null;
    this.stream = new MediaStream();
    // Janus relays no mute metadata; a muted microphone sends silence.
    this.remoteMuted = { audio: false, video: false };
    this.connected = false;
    this.membershipSeen = true;
    this.closed = false;
  }

  get state() {
    return this.pc ? this.pc.connectionState : "new";
  }

  async subscribe() {
    const t = this.transport;
    this.handleId = await t.attach();
    t.handlers.set(this.handleId, (message) => this._onMessage(message));
    const answer = await t.message(this.handleId, {
      request: "join",
      ptype: "subscriber",
      room: t.credentials.room,
      streams: [{ feed: this.feedId }],
      private_id: t.privateId,
      token: t.credentials.room_token,
    });
    const data = answer.plugindata?.data ?? {};
    if (data.error || !answer.jsep) throw new Error(data.error ?? "the SFU offered no media");
    const pc = new RTCPeerConnection(await rtcConfiguration(t.call.client));
    this.pc = pc;
    pc.addEventListener("track", (event) => {
      if (t.call.kind === "voice" && event.track.kind === "video") return;
      this.stream.addTrack(event.track);
      event.track.addEventListener("ended", () => {
        this.stream.removeTrack(event.track);
        t.call._changed();
      });
      t.call._changed();
    });
    pc.addEventListener("connectionstatechange", () => {
      this.connected = pc.connectionState === "connected";
      t.call._changed();
    });
    await pc.setRemoteDescription(answer.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    if (this.closed) return;
    await t.message(this.handleId, { request: "start" }, { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
  }

  _onMessage(message) {
    if (message.janus === "hangup") {
      // Janus ended this feed's connection (its publisher left or was kicked).
      this.transport._dropFeed(this.feedId);
      return;
    }
    if (message.janus === "trickle" && this.pc) {
      const c = message.candidate;
      if (c && !c.completed) this.pc.addIceCandidate(c).catch(() => {});
    }
  }

  // The mesh Peer's interface, for what group.js calls on every peer.
  applyVideoEncoding() {}
  sendMetadata() {}
  async updateVideo() {}
  hangup() {
    this.close();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc?.close();
    if (this.handleId !== null) {
      this.transport.handlers.delete(this.handleId);
      this.transport.send({ janus: "detach", handle_id: this.handleId });
    }
  }

  stats() {
    return peerStats(this);
  }
}

/**
 * The call's connection to Janus: one session, the publisher handle, a subscriber per remote
 * feed. `fetchCredentials()` asks the bridge (again) for credentials.
 */
export class JanusTransport {
  constructor(call, fetchCredentials) {
    this.call = call;
    this.fetchCredentials = fetchCredentials;
    this.credentials = null;
    this.ws = null;
    this.sessionId = null;
    this.publisherHandle = null;
    this.privateId = null;
    this.publisherPc = null;
    this.videoSender = null;
    /** handle id → message handler (events that carry no transaction) */
    this.handlers = new Map();
    this.pending = new Map();
    this.stopped = false;
    this.connectedOnce = false;
    /** Why the SFU cannot be reached now, for the panel; null when connected. */
    this.problem = null;
    this._timers = [];
  }

  /** Connect, join the room and publish; throws when the first attempt fails. */
  async start(credentials) {
    this.credentials = credentials;
    try {
      await this._open();
    } catch (error) {
      this.stop();
      throw error;
    }
    this.connectedOnce = true;
    this._timers.push(setInterval(() => this.send({ janus: "keepalive" }), KEEPALIVE_MS));
    this._timers.push(setInterval(() => this._refreshCredentials(), CREDENTIALS_REFRESH_MS));
  }

  stop() {
    this.stopped = true;
    for (const timer of this._timers) clearInterval(timer);
    this._timers = [];
    this._closeSession();
  }

  async _refreshCredentials() {
    try {
      this.credentials = await this.fetchCredentials();
    } catch (error) {
      // Refused: the member may no longer be in this call. Anything else: try again later.
      if (error?.status === 403 || error?.status === 404) this.call.leave("forbidden");
    }
  }

  _closeSession() {
    for (const peer of this.call.peers.values()) peer.close();
    this.call.peers.clear();
    this.publisherPc?.close();
    this.publisherPc = null;
    this.videoSender = null;
    for (const { reject } of this.pending.values()) reject(new Error("the SFU connection closed"));
    this.pending.clear();
    this.handlers.clear();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      if (this.sessionId !== null && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ janus: "destroy", session_id: this.sessionId, transaction: transactionId(), token: this.credentials?.token }));
      }
      ws.close();
    }
    this.sessionId = null;
  }

  async _open() {
    const ws = new WebSocket(this.credentials.focus.url, "janus-protocol");
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("the SFU cannot be reached"));
    });
    ws.onmessage = (event) => this._onMessage(event.data);
    ws.onclose = () => this._lost();
    const created = await this.request({ janus: "create" });
    this.sessionId = created.data.id;
    this.publisherHandle = await this.attach();
    this.handlers.set(this.publisherHandle, (message) => this._onPublisherEvent(message));
    const joined = await this.message(this.publisherHandle, {
      request: "join",
      ptype: "publisher",
      room: this.credentials.room,
      id: this.credentials.participant_id,
      token: this.credentials.room_token,
    });
    const data = joined.plugindata?.data ?? {};
    if (data.videoroom !== "joined") throw new Error(data.error ?? "the SFU refused the call");
    this.privateId = data.private_id;
    await this._publish();
    this.problem = null;
    this._subscribeAll(data.publishers ?? []);
  }

  /** The SFU went away (killed, restarted, network): say so, and come back when it does. */
  _lost() {
    if (this.stopped) return;
    this._closeSession();
    this.problem = "Lost the connection to the call server; reconnecting…";
    this.call._changed();
    const retry = async () => {
      if (this.stopped) return;
      try {
        this.credentials = await this.fetchCredentials();
        await this._open();
        this.call._changed();
      } catch (error) {
        if (error?.status === 403 || error?.status === 404) {
          this.call.leave("forbidden");
          return;
        }
        this._closeSession();
        if (!this.stopped) setTimeout(retry, RECONNECT_MS);
      }
    };
    setTimeout(retry, RECONNECT_MS);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const body = { ...message, transaction: transactionId(), token: this.credentials.token };
    if (this.sessionId !== null) body.session_id = this.sessionId;
    this.ws.send(JSON.stringify(body));
  }

  /** A request and its answer (the first reply that is not an `ack`). */
  request(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("the SFU connection is closed"));
    const transaction = transactionId();
    const body = { ...message, transaction, token: this.credentials.token };
    if (this.sessionId !== null && body.session_id === undefined) body.session_id = this.sessionId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new Error("the SFU did not answer"));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transaction, {
        resolve: (answer) => {
          clearTimeout(timer);
          if (answer.janus === "error") reject(new Error(answer.error?.reason ?? "the SFU refused"));
          else resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.ws.send(JSON.stringify(body));
    });
  }

  async attach() {
    const answer = await this.request({ janus: "attach", plugin: PLUGIN });
    return answer.data.id;
  }

  message(handleId, body, jsep) {
    const message = { janus: "message", handle_id: handleId, body };
    if (jsep) message.jsep = jsep;
    return this.request(message);
  }

  _onMessage(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.janus === "ack") return;
    const waiting = message.transaction ? this.pending.get(message.transaction) : null;
    if (waiting) {
      this.pending.delete(message.transaction);
      waiting.resolve(message);
      return;
    }
    const handler = this.handlers.get(message.sender);
    if (handler) handler(message);
  }

  async _publish() {
    const pc = new RTCPeerConnection(await rtcConfiguration(this.call.client));
    this.publisherPc = pc;
    for (const track of this.call.micStream?.getAudioTracks() ?? []) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.call.micStream] });
    }
    if (this.call.canVideo) {
      // One video sender for the call's life: camera, screen or nothing (replaceTrack).
      const transceiver = pc.addTransceiver("video", { direction: "sendonly" });
      this.videoSender = transceiver.sender;
      await this.videoSender.replaceTrack(this.call.localVideoTrack ?? null);
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await this.message(
      this.publisherHandle,
      { request: "configure", audio: true, video: this.call.canVideo },
      { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
    );
    if (!answer.jsep) throw new Error(answer.plugindata?.data?.error ?? "the SFU did not take our media");
    await pc.setRemoteDescription(answer.jsep);
  }

  /** The camera or screen changed: the one video sender takes the new track. */
  async updateVideo() {
    await this.videoSender?.replaceTrack(this.call.localVideoTrack ?? null);
  }

  _subscribeAll(publishers) {
    for (const publisher of publishers) {
      const feedId = String(publisher.id);
      if (feedId === this.credentials.participant_id) continue;
      const who = participantOf(feedId);
      // A feed whose id the bridge did not sign has no Matrix identity: it is not shown (and
      // the bridge kicks it).
      if (!who) continue;
      const id = `${who.userId}|${who.deviceId}`;
      const existing = this.call.peers.get(id);
      if (existing && existing.feedId === feedId) continue;
      existing?.close();
      const peer = new SfuPeer(this, feedId, who);
      this.call.peers.set(id, peer);
      peer.subscribe().catch((error) => {
        console.warn(`receiving ${who.userId} through the SFU failed`, error);
        if (this.call.peers.get(id) === peer) this.call.peers.delete(id);
        peer.close();
        this.call._changed();
      });
    }
    this.call._changed();
  }

  _dropFeed(feedId) {
    for (const [id, peer] of this.call.peers) {
      if (peer.feedId === String(feedId)) {
        peer.close();
        this.call.peers.delete(id);
      }
    }
    this.call._changed();
  }

  _onPublisherEvent(message) {
    if (message.janus === "trickle" && this.publisherPc) {
      const c = message.candidate;
      if (c && !c.completed) this.publisherPc.addIceCandidate(c).catch(() => {});
      return;
    }
    const data = message.plugindata?.data;
    if (!data) return;
    if (data.leaving === "ok" && data.reason === "kicked") {
      // The bridge removed us (kicked or banned from the channel).
      this.call.leave("forbidden");
      return;
    }
    if (Array.isArray(data.publishers)) this._subscribeAll(data.publishers);
    if (data.unpublished !== undefined && data.unpublished !== "ok") this._dropFeed(data.unpublished);
    if (data.leaving !== undefined && data.leaving !== "ok") this._dropFeed(data.leaving);
    // Another participant kicked by the bridge.
    if (data.kicked !== undefined) this._dropFeed(data.kicked);
  }
}
