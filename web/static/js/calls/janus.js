// Channel calls through the SFU: Janus's VideoRoom plugin over its WebSocket API.
//
// The bridge hands out the credentials (`POST /servers/{sid}/channels/{cid}/sfu`, docs/API.md):
// the Janus URL, the channel's VideoRoom room id, a participant id it signed, a token for every
// Janus request and a token for joining that one room. They expire; the call asks again every
// third of their lifetime (sooner again after a failed try) and uses the newest token from then
// on, so someone who may no longer enter the channel is out of Janus soon even if a kick were
// missed. Should the tokens run out all the same (a bridge too slow to answer for minutes), Janus
// refuses the keepalives and times the session out: the call then reconnects with new ones.
//
// Each device publishes its microphone (and camera, in a video channel) on one "publisher"
// handle, and receives every other feed on ONE multistream "subscriber" handle with one
// RTCPeerConnection: the subscriber joins with `streams: [{feed}, …]`, and feeds that come or go
// later are added and removed with `update` requests on the same handle (subscribe by feed,
// unsubscribe by the subscription's mid), each answered by an offer of Janus that we answer in a
// `start`. One renegotiation at a time; feeds that arrive meanwhile go together in the next one
// (Subscription). Janus's `streams` layout says which mid carries which feed. For the call panel
// and the tests each remote feed is still a peer of its own (SfuPeer, the mesh Peer's shape),
// holding the tracks of its feed's mids, whose `pc` is a view of the shared connection limited
// to those mids (its statistics, its receivers). Who is in the call stays MatrixRTC membership
// in room state (group.js); Janus only carries the media. Participant ids name the Matrix user
// and device they were signed for (`base64url(user).base64url(device).nonce.mac`), which is how
// a feed finds its tile.

import { rtcConfiguration } from "./ice.js";
import { peerStats } from "./stats.js";

export const JANUS_FOCUS = "org.guilds.janus";
const PLUGIN = "janus.plugin.videoroom";
const KEEPALIVE_MS = 15_000;
// Credentials are asked for again a third of their lifetime after they came, within these bounds;
// a failed try (the bridge slow or restarting) is tried again after the shortest.
const CREDENTIALS_REFRESH_MIN_MS = 5_000;
const CREDENTIALS_REFRESH_MAX_MS = 60_000;
// Janus's answer to a request whose token it does not take (JANUS_ERROR_UNAUTHORIZED).
const JANUS_UNAUTHORIZED = 403;
// The VideoRoom's answer to a subscription naming a feed it does not have (any more).
const JANUS_NO_SUCH_FEED = 428;
const REQUEST_TIMEOUT_MS = 20_000;
// Wait this long at most for our ICE candidates before sending a description (no trickle).
const GATHER_MS = 3_000;
// One getStats() of the subscriber connection serves every feed's peer for this long.
const STATS_REUSE_MS = 100;
// After the SFU went away: try again this often.
const RECONNECT_MS = 2_000;

/**
 * How long to wait before asking for credentials again: a third of what is left of their
 * lifetime (`expires_at`, ms since the epoch), so two tries can fail before they run out.
 * @param {number|undefined} expiresAt
 * @param {number} now
 */
export function refreshDelay(expiresAt, now) {
  if (!Number.isFinite(expiresAt)) return CREDENTIALS_REFRESH_MAX_MS;
  const third = (/** @type {number} */ (expiresAt) - now) / 3;
  return Math.min(CREDENTIALS_REFRESH_MAX_MS, Math.max(CREDENTIALS_REFRESH_MIN_MS, third));
}

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

/** The `display` of a feed that carries a participant's screen, beside their camera's. */
export const SCREEN_DISPLAY = "screen";

/** The key of a feed in the call's peers: its device, and `|screen` for its screen share. */
export function feedKey(who, screen) {
  return `${who.userId}|${who.deviceId}${screen ? "|screen" : ""}`;
}

/**
 * The bookkeeping of the call's one subscription, without any I/O (tests/unit_js/janus-subscription.test.mjs):
 * the feeds the call wants to receive, the feeds Janus has been asked for, and which of the
 * subscription's m-lines (`mid`) carries which feed, from the `streams` layout Janus sends with
 * each offer. Janus reuses the m-line of a stream that went for a stream that comes, so the
 * layout, not the order of requests, says whose a mid is.
 */
export class Subscription {
  constructor() {
    /** Feed ids the call wants to receive. */
    this.wanted = new Set();
    /** Feed ids Janus took a subscribe for (and no unsubscribe since). */
    this.asked = new Set();
    /** mid → feed id, the active streams of Janus's latest layout. */
    this.mids = new Map();
  }

  want(feedId) {
    this.wanted.add(String(feedId));
  }

  unwant(feedId) {
    this.wanted.delete(String(feedId));
  }

  /**
   * The one change to ask Janus for now, covering everything that piled up since the last one
   * (feeds to add, subscription mids to remove), or null when the subscription is as wanted.
   * @returns {{subscribe: string[], unsubscribe: string[]} | null}
   */
  nextUpdate() {
    const carried = new Set(this.mids.values());
    // A feed no longer wanted that carries nothing (never had a stream, or already removed).
    for (const feed of [...this.asked]) if (!this.wanted.has(feed) && !carried.has(feed)) this.asked.delete(feed);
    const subscribe = [...this.wanted].filter((feed) => !this.asked.has(feed));
    const unsubscribe = [...this.mids].filter(([, feed]) => !this.wanted.has(feed)).map(([mid]) => mid);
    if (subscribe.length === 0 && unsubscribe.length === 0) return null;
    return { subscribe, unsubscribe };
  }

  /** Janus took `update`; `streams` is the layout it answered with (absent: unchanged). */
  done(update, streams) {
    for (const feed of update.subscribe) if (this.wanted.has(feed)) this.asked.add(feed);
    for (const mid of update.unsubscribe) {
      const feed = this.mids.get(mid);
      if (feed !== undefined && !this.wanted.has(feed)) this.asked.delete(feed);
    }
    this.applyLayout(streams);
  }

  /** Take Janus's `streams` (the layout of an `attached` or `updated` event), if any. */
  applyLayout(streams) {
    if (!Array.isArray(streams)) return;
    this.mids = new Map();
    for (const s of streams) {
      if (s.active === false || s.feed_id === undefined || s.feed_id === null || s.type === "data") continue;
      this.mids.set(String(s.mid), String(s.feed_id));
    }
  }

  /** The mids that carry a feed now. */
  midsOf(feedId) {
    const feed = String(feedId);
    return [...this.mids].filter(([, f]) => f === feed).map(([mid]) => mid);
  }

  /** Forget everything (a new subscriber handle starts from nothing). */
  reset() {
    this.asked.clear();
    this.mids.clear();
  }
}

/** The VideoRoom request that makes an update of `Subscription.nextUpdate()`. */
export function updateRequest(update) {
  const body = { request: "update" };
  if (update.subscribe.length > 0) body.subscribe = update.subscribe.map((feed) => ({ feed }));
  if (update.unsubscribe.length > 0) body.unsubscribe = update.unsubscribe.map((mid) => ({ sub_mid: mid }));
  return body;
}

/** The feeds of `subscribe` that Janus's error names ("No such feed (id)"). */
export function feedsNamed(error, subscribe) {
  const text = String(error ?? "");
  return subscribe.filter((feed) => text.includes(`(${feed})`));
}

/**
 * What a peer of the call panel sees of the shared subscriber connection: only the m-lines that
 * carry its own feed. Its `getStats()` keeps every entry but the other feeds' `inbound-rtp`, so
 * the panel's talking indicator, `peerStats` and the tests read one feed as they read a mesh
 * peer's connection.
 */
class FeedConnection {
  constructor(transport, feedId) {
    this.transport = transport;
    this.feedId = feedId;
  }

  get _pc() {
    return this.transport.subscriber?.pc ?? null;
  }

  get connectionState() {
    return this._pc?.connectionState ?? "new";
  }

  getTransceivers() {
    const pc = this._pc;
    if (!pc || pc.signalingState === "closed") return [];
    const mids = new Set(this.transport.subscription.midsOf(this.feedId));
    return pc.getTransceivers().filter((t) => t.mid !== null && mids.has(t.mid));
  }

  getReceivers() {
    return this.getTransceivers().map((t) => t.receiver);
  }

  getSenders() {
    return [];
  }

  async getStats() {
    const out = new Map();
    const pc = this._pc;
    if (!pc) return out;
    const mids = new Set(this.transport.subscription.midsOf(this.feedId));
    const tracks = new Set(this.getReceivers().map((r) => r.track?.id));
    const report = await this.transport.subscriberStats(pc);
    report.forEach((s, id) => {
      if (s.type === "inbound-rtp" && !(s.mid !== undefined ? mids.has(s.mid) : tracks.has(s.trackIdentifier))) return;
      out.set(id, s);
    });
    return out;
  }
}

/** One remote feed (the mesh Peer's shape): a participant's microphone and camera, or
 *  (`screen`) the screen they share; its media arrive on the call's one subscriber connection,
 *  on the m-lines Janus's layout gives its feed. */
class SfuPeer {
  constructor(transport, feedId, who, screen = false) {
    this.transport = transport;
    this.feedId = feedId;
    this.userId = who.userId;
    this.deviceId = who.deviceId;
    this.screen = screen;
    this.pc = new FeedConnection(transport, feedId);
    this.stream = new MediaStream();
    // Janus relays no mute metadata: the marks come from the member's MatrixRTC membership
    // (applyMarks). A muted microphone sends silence; a camera turned off sends nothing.
    this.remoteMuted = { audio: false, video: false };
    this.deafened = false;
    this.connected = false;
    this.membershipSeen = true;
    this.closed = false;
  }

  get state() {
    return this.pc.connectionState;
  }

  /** Hold exactly the tracks of the m-lines that carry this feed now (no video in a voice call). */
  syncTracks() {
    const t = this.transport;
    const tracks = this.pc
      .getReceivers()
      .map((r) => r.track)
      .filter((track) => track && !(t.call.kind === "voice" && track.kind === "video"));
    let changed = false;
    for (const track of this.stream.getTracks()) {
      if (!tracks.includes(track)) {
        this.stream.removeTrack(track);
        changed = true;
      }
    }
    for (const track of tracks) {
      if (!this.stream.getTracks().includes(track)) {
        this.stream.addTrack(track);
        changed = true;
      }
    }
    const connected = this.pc.connectionState === "connected";
    if (connected !== this.connected) changed = true;
    this.connected = connected;
    return changed;
  }

  /** What the member's membership says (docs/CALLS.md); a screen feed is only its picture. */
  applyMarks(marks) {
    if (this.screen) return;
    this.remoteMuted = { audio: Boolean(marks?.audioMuted), video: Boolean(marks?.videoMuted) };
    this.deafened = Boolean(marks?.deafened);
  }

  // The mesh Peer's interface, for what group.js calls on every peer.
  applyVideoEncoding() {}
  sendMetadata() {}
  async updateVideo() {}
  hangup() {
    this.close();
  }

  /** The feed's m-lines are given back by the transport (`_dropFeed`); the connection stays. */
  close() {
    this.closed = true;
  }

  stats() {
    return peerStats(this);
  }
}

/**
 * The call's connection to Janus: one session, the publisher handle, and one subscriber handle
 * with one RTCPeerConnection that receives every remote feed. `fetchCredentials()` asks the
 * bridge (again) for credentials.
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
    /** Feeds published in the room now: feed id → Janus's description of it. */
    this.feeds = new Map();
    /** The one subscriber handle and its connection ({handleId, pc}), once there is a feed. */
    this.subscriber = null;
    this.subscription = new Subscription();
    /** Offers Janus sent on its own (not answering a request of ours), to answer in turn. */
    this._offers = [];
    /** Whether a renegotiation of the subscription is under way (one at a time). */
    this._renegotiating = false;
    /** The subscriber connection's latest getStats() ({pc, at, report}), see subscriberStats. */
    this._stats = null;
    /** Counts sessions: work begun for a session that closed since stops at its next step. */
    this._epoch = 0;
    /** Our screen share's own publisher (handle, connection, participant id), or null. */
    this.screen = null;
    /** handle id → message handler (events that carry no transaction) */
    this.handlers = new Map();
    this.pending = new Map();
    this.stopped = false;
    this.connectedOnce = false;
    /** Why the SFU cannot be reached now, for the panel; null when connected. */
    this.problem = null;
    this._timers = [];
    this._refreshTimer = null;
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
    this._scheduleRefresh(refreshDelay(this.credentials?.expires_at, Date.now()));
  }

  stop() {
    this.stopped = true;
    for (const timer of this._timers) clearInterval(timer);
    this._timers = [];
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    this._closeSession();
  }

  /** Ask for credentials again in `delayMs` (instead of whenever it was due). */
  _scheduleRefresh(delayMs) {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = this.stopped ? null : setTimeout(() => this._refreshCredentials(), delayMs);
  }

  async _refreshCredentials() {
    this._scheduleRefresh(CREDENTIALS_REFRESH_MAX_MS); // one refresh due at a time, whatever happens
    try {
      this.credentials = await this.fetchCredentials();
      this._scheduleRefresh(refreshDelay(this.credentials?.expires_at, Date.now()));
    } catch (error) {
      // Refused: the member may no longer be in this call. Anything else: try again soon.
      if (error?.status === 403 || error?.status === 404) this.call.leave("forbidden");
      else this._scheduleRefresh(CREDENTIALS_REFRESH_MIN_MS);
    }
  }

  _closeSession() {
    this._epoch += 1;
    for (const peer of this.call.peers.values()) peer.close();
    this.call.peers.clear();
    this._closeSubscriber();
    this.subscription = new Subscription();
    this._offers = [];
    this._renegotiating = false;
    this.publisherPc?.close();
    this.publisherPc = null;
    this.videoSender = null;
    this.screen?.pc.close();
    this.screen = null;
    this.feeds.clear();
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
    // Back after the SFU went away while sharing: the screen is published again.
    const track = this.call.screenTrack;
    if (track && track.readyState === "live") {
      this.publishScreen(track).catch((error) => console.warn("sharing the screen again failed", error));
    }
  }

  /**
   * Publish the screen as a second feed in the room, beside the camera: its own handle and
   * connection, its own participant id from the bridge (same user and device; `display`
   * "screen" tells the others what it is), so everyone subscribes to it as to any feed.
   */
  async publishScreen(track) {
    this.unpublishScreen();
    const credentials = await this.fetchCredentials();
    const handleId = await this.attach();
    const pc = new RTCPeerConnection(await rtcConfiguration(this.call.client));
    const screen = { handleId, pc, participantId: credentials.participant_id };
    this.screen = screen;
    this.handlers.set(handleId, (message) => {
      if (message.janus === "trickle" && message.candidate && !message.candidate.completed) {
        pc.addIceCandidate(message.candidate).catch(() => {});
      }
    });
    try {
      const joined = await this.message(handleId, {
        request: "join",
        ptype: "publisher",
        room: credentials.room,
        id: credentials.participant_id,
        display: SCREEN_DISPLAY,
        token: credentials.room_token,
      });
      const data = joined.plugindata?.data ?? {};
      if (data.videoroom !== "joined") throw new Error(data.error ?? "the SFU refused the screen");
      pc.addTransceiver(track, { direction: "sendonly" });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const answer = await this.message(
        handleId,
        { request: "configure", audio: false, video: true },
        { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
      );
      if (!answer.jsep) throw new Error(answer.plugindata?.data?.error ?? "the SFU did not take the screen");
      await pc.setRemoteDescription(answer.jsep);
    } catch (error) {
      if (this.screen === screen) this.unpublishScreen();
      throw error;
    }
  }

  /** Stop publishing the screen: its handle goes, and Janus tells the others. */
  unpublishScreen() {
    const screen = this.screen;
    if (!screen) return;
    this.screen = null;
    screen.pc.close();
    this.handlers.delete(screen.handleId);
    this.send({ janus: "detach", handle_id: screen.handleId });
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
    // Janus ended our session (no keepalive it took for its session_timeout): join again.
    if (message.janus === "timeout") {
      this._lost();
      return;
    }
    const waiting = message.transaction ? this.pending.get(message.transaction) : null;
    if (waiting) {
      this.pending.delete(message.transaction);
      waiting.resolve(message);
      return;
    }
    // A keepalive (nobody waits for its answer) refused for its token: new credentials now.
    if (message.janus === "error" && message.error?.code === JANUS_UNAUTHORIZED) {
      this._refreshCredentials();
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
      // One camera sender for the call's life: the camera or nothing (replaceTrack). A screen
      // share is a feed of its own (publishScreen).
      const transceiver = pc.addTransceiver("video", { direction: "sendonly" });
      this.videoSender = transceiver.sender;
      await this.videoSender.replaceTrack(this.call.cameraTrack ?? null);
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

  /** The camera went on or off: the camera sender takes the new track. */
  async updateVideo() {
    await this.videoSender?.replaceTrack(this.call.cameraTrack ?? null);
  }

  _subscribeAll(publishers) {
    for (const publisher of publishers) {
      const feedId = String(publisher.id);
      if (feedId === this.credentials.participant_id || feedId === this.screen?.participantId) continue;
      const who = participantOf(feedId);
      // A feed whose id the bridge did not sign has no Matrix identity: it is not shown (and
      // the bridge kicks it).
      if (!who) continue;
      const screen = publisher.display === SCREEN_DISPLAY;
      const id = feedKey(who, screen);
      const existing = this.call.peers.get(id);
      if (existing && existing.feedId === feedId) continue;
      // The same device under a new feed (it came back): the old feed's streams go.
      if (existing) this._dropFeed(existing.feedId);
      const peer = new SfuPeer(this, feedId, who, screen);
      peer.applyMarks(this.call.marksOf(who.userId, who.deviceId));
      this.call.peers.set(id, peer);
      this.feeds.set(feedId, publisher);
      this.subscription.want(feedId);
    }
    this.call._changed();
    this._renegotiate();
  }

  _dropFeed(feedId) {
    const feed = String(feedId);
    this.feeds.delete(feed);
    this.subscription.unwant(feed);
    for (const [id, peer] of this.call.peers) {
      if (peer.feedId === feed) {
        peer.close();
        this.call.peers.delete(id);
      }
    }
    this.call._changed();
    this._renegotiate();
  }

  /**
   * Bring the subscription to what the call wants, one renegotiation at a time: each is one
   * request (the subscriber's `join`, then `update`s) for everything that piled up meanwhile,
   * Janus's offer, and our answer in a `start`. Feeds that come or go during one wait for the
   * next.
   */
  async _renegotiate() {
    if (this._renegotiating || this.stopped || this.sessionId === null) return;
    this._renegotiating = true;
    const epoch = this._epoch;
    let again = false;
    try {
      while (epoch === this._epoch && !this.stopped) {
        const offer = this._offers.shift();
        if (offer) {
          this.subscription.applyLayout(offer.streams);
          await this._answer(offer.jsep, epoch);
          continue;
        }
        const update = this.subscription.nextUpdate();
        if (!update) break;
        await this._update(update, epoch);
      }
    } catch (error) {
      if (epoch !== this._epoch || this.stopped) return;
      console.warn("updating what we receive through the SFU failed", error);
      const missing = feedsNamed(error?.message, error?.update?.subscribe ?? []);
      if (error?.code === JANUS_NO_SUCH_FEED && missing.length > 0) {
        // Gone (or not started yet) between Janus's word and our request: the others go on
        // now, and the missing feed is asked for again shortly if it is still published.
        for (const feed of missing) {
          const publisher = this.feeds.get(feed);
          this.subscription.unwant(feed);
          setTimeout(() => {
            if (this.stopped || this.feeds.get(feed) !== publisher) return;
            this.subscription.want(feed);
            this._renegotiate();
          }, RECONNECT_MS);
        }
        again = true;
        return;
      }
      // Anything else (a slow SFU, a lost answer, a description refused): start over on a
      // fresh subscriber handle with every feed still wanted, shortly.
      this._dropSubscriber();
      setTimeout(() => {
        if (epoch === this._epoch) this._renegotiate();
      }, RECONNECT_MS);
    } finally {
      if (epoch === this._epoch) {
        this._renegotiating = false;
        this._syncPeers();
        if (again) this._renegotiate();
      }
    }
  }

  /** Ask Janus for one update (the first one joins as a subscriber) and answer its offer. */
  async _update(update, epoch) {
    let answer;
    const joining = !this.subscriber;
    try {
      if (joining) {
        const handleId = await this.attach();
        if (epoch !== this._epoch) return;
        this.subscriber = { handleId, pc: null };
        this.handlers.set(handleId, (message) => this._onSubscriberEvent(message));
        answer = await this.message(handleId, {
          request: "join",
          ptype: "subscriber",
          room: this.credentials.room,
          streams: update.subscribe.map((feed) => ({ feed })),
          private_id: this.privateId,
          token: this.credentials.room_token,
          // Renegotiations are ours alone: a feed that leaves is unsubscribed by us, in turn.
          autoupdate: false,
        });
      } else {
        answer = await this.message(this.subscriber.handleId, updateRequest(update));
      }
    } catch (error) {
      if (joining && epoch === this._epoch) this._closeSubscriber();
      throw Object.assign(error, { update });
    }
    if (epoch !== this._epoch) return;
    const data = answer.plugindata?.data ?? {};
    if (data.error) {
      // A subscriber that did not get in is no subscriber: the next try joins afresh.
      if (joining) this._closeSubscriber();
      throw Object.assign(new Error(data.error), { code: data.error_code, update });
    }
    this.subscription.done(update, data.streams);
    // No offer: nothing changed for the SDP, or Janus postponed it (it comes as an event).
    if (answer.jsep) await this._answer(answer.jsep, epoch);
  }

  /** Answer an offer of Janus on the subscriber connection (made with the first one). */
  async _answer(jsep, epoch) {
    const subscriber = this.subscriber;
    if (!subscriber) return;
    let pc = subscriber.pc;
    if (!pc) {
      pc = new RTCPeerConnection(await rtcConfiguration(this.call.client));
      if (epoch !== this._epoch || this.subscriber !== subscriber) {
        pc.close();
        return;
      }
      subscriber.pc = pc;
      pc.addEventListener("connectionstatechange", () => {
        if (this.subscriber?.pc === pc) this._syncPeers();
      });
    }
    await pc.setRemoteDescription(jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    if (epoch !== this._epoch || this.subscriber !== subscriber) return;
    this._syncPeers();
    const local = { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
    const started = await this.message(subscriber.handleId, { request: "start" }, local);
    const error = started.plugindata?.data?.error;
    if (error) throw new Error(error);
  }

  /**
   * The subscriber connection's statistics, one report shared by the peers that ask within
   * STATS_REUSE_MS (the panel and `call.stats()` ask once per feed, and the report covers all).
   */
  subscriberStats(pc) {
    const now = performance.now();
    const cached = this._stats;
    if (cached && cached.pc === pc && now - cached.at < STATS_REUSE_MS) return cached.report;
    const report = pc.getStats();
    this._stats = { pc, at: now, report };
    return report;
  }

  /** Every peer takes the tracks its feed's m-lines carry now, and the connection's state. */
  _syncPeers() {
    let changed = false;
    for (const peer of this.call.peers.values()) if (peer instanceof SfuPeer && peer.syncTracks()) changed = true;
    if (changed) this.call._changed();
  }

  /** Give the subscriber up; the next renegotiation joins afresh with every feed still wanted. */
  _dropSubscriber() {
    this._closeSubscriber();
    this.subscription.reset();
    this._offers = [];
  }

  _closeSubscriber() {
    const subscriber = this.subscriber;
    if (!subscriber) return;
    this.subscriber = null;
    subscriber.pc?.close();
    this.handlers.delete(subscriber.handleId);
    this.send({ janus: "detach", handle_id: subscriber.handleId });
  }

  _onSubscriberEvent(message) {
    const pc = this.subscriber?.pc;
    if (message.janus === "trickle") {
      const c = message.candidate;
      if (pc && c && !c.completed) pc.addIceCandidate(c).catch(() => {});
      return;
    }
    if (message.janus === "hangup") {
      // Janus ended the subscriber's connection (ICE or DTLS failed): a fresh one, every feed.
      if (this.stopped) return;
      this._epoch += 1;
      this._renegotiating = false;
      this._dropSubscriber();
      this._syncPeers();
      setTimeout(() => this._renegotiate(), RECONNECT_MS);
      return;
    }
    // An offer Janus sent on its own (an update it had postponed): answered in turn.
    const data = message.plugindata?.data;
    if (message.jsep && data?.videoroom === "updated") {
      this._offers.push({ streams: data.streams, jsep: message.jsep });
      this._renegotiate();
    }
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
