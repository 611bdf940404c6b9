// 1:1 voice and video calls in a direct conversation, signalled with the Matrix spec's VoIP room
// events, version "1": m.call.invite, m.call.candidates, m.call.answer, m.call.select_answer,
// m.call.negotiate, m.call.reject and m.call.hangup, each with `call_id`, `party_id` and
// `version`. Field names follow the spec exactly, so a call rings in (and from) other Matrix
// clients' 1:1 calls.
//
// Mute and camera state travel as MSC3077 stream metadata: in the invite, answer and negotiate
// events and, on each change, in `m.call.sdp_stream_metadata_changed`. It is written under both
// the stable key and `org.matrix.msc3077.sdp_stream_metadata` (matrix-js-sdk 37 reads only the
// unstable one), and read from either key and either event type (37 sends
// `org.matrix.call.sdp_stream_metadata_changed`).
//
// The sync engine hands every batch of new timeline events to `handleBatch`: an invite rings only
// once the whole batch is read (an invite hung up in the same batch never rings), only while it is
// younger than its `lifetime` (by the server's `age`, not the local clock), and only for us (the
// `invitee`). Glare, both calling each other at once, keeps exactly one call: an invite that
// arrives while ours is still being prepared replaces ours and is answered at once; once ours is
// sent, the call with the lexicographically lesser call_id survives on both sides (the side whose
// call was the greater hangs it up and answers the other).

import { rtcConfiguration } from "./ice.js";
import { IceRecovery } from "./ice-recovery.js";

export const CALL_EVENT_TYPES = new Set([
  "m.call.invite",
  "m.call.candidates",
  "m.call.answer",
  "m.call.select_answer",
  "m.call.negotiate",
  "m.call.reject",
  "m.call.hangup",
  "m.call.sdp_stream_metadata_changed",
  "org.matrix.call.sdp_stream_metadata_changed",
]);
export const METADATA_CHANGED = "m.call.sdp_stream_metadata_changed";
export const METADATA_KEYS = ["sdp_stream_metadata", "org.matrix.msc3077.sdp_stream_metadata"];
export const VOIP_VERSION = "1";
export const INVITE_LIFETIME_MS = 60_000;
// An invite with less time left than this is not worth ringing for: nobody could pick it up.
const MIN_RING_MS = 3_000;
// Candidates found this soon go inside the invite/answer SDP itself (the spec suggests ~200 ms).
const INITIAL_GATHER_MS = 200;
// Later candidates are batched: first batch this long after the invite (caller) / answer (callee).
const CANDIDATE_BATCH_CALLER_MS = 2_000;
const CANDIDATE_BATCH_CALLEE_MS = 500;
const ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random id in the spec's VoIP id grammar ([0-9a-zA-Z._~-], 1–255 characters). */
export function voipId(length = 16) {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => ID_CHARS[b % ID_CHARS.length]).join("");
}

/** Milliseconds an invite (or negotiate) is still valid for, judged by the server's age. */
export function remainingLifetime(event, receivedAt, now = Date.now()) {
  const lifetime = Number(event.content?.lifetime);
  if (!Number.isFinite(lifetime) || lifetime <= 0) return 0;
  const age = Number(event.unsigned?.age);
  const ageNow = Number.isFinite(age) ? age + (now - receivedAt) : now - (event.origin_server_ts ?? 0);
  return lifetime - ageNow;
}

/**
 * The sender's microphone and camera state from an event's stream metadata (either key), or
 * null when it carries none: {audio, video} muted flags of its user-media stream.
 */
export function remoteMuteState(content) {
  for (const key of METADATA_KEYS) {
    const metadata = content?.[key];
    if (!metadata || typeof metadata !== "object") continue;
    const streams = Object.values(metadata).filter((s) => s && typeof s === "object");
    const usermedia = streams.find((s) => s.purpose === "m.usermedia") ?? streams[0];
    if (!usermedia) continue;
    return { audio: usermedia.audio_muted === true, video: usermedia.video_muted === true };
  }
  return null;
}

function isVideoSdp(sdp) {
  return typeof sdp === "string" && /^m=video [1-9]/m.test(sdp);
}

function validDescription(d, type) {
  return d && typeof d === "object" && typeof d.sdp === "string" && (!type || d.type === type);
}

/**
 * One call. Listen for "state" (this.state changed), "remote" (a remote stream arrived) and
 * "local" (the local stream changed). States: preparing (ours, invite not sent yet), inviting
 * (ours, waiting for an answer), ringing (theirs, waiting for us), answering, connecting,
 * connected, ended (see endReason).
 */
export class DirectCall extends EventTarget {
  constructor(manager, { roomId, callId, direction, video, opponentUserId }) {
    super();
    this.manager = manager;
    this.roomId = roomId;
    this.callId = callId;
    this.direction = direction;
    this.video = video;
    this.partyId = voipId(12);
    this.opponentUserId = opponentUserId;
    this.opponentPartyId = null;
    this.state = direction === "outbound" ? "preparing" : "ringing";
    this.endReason = null;
    this.endedBy = null;
    this.pc = null;
    this.localStream = null;
    this.remoteStream = null;
    this.offer = null;
    this.expiresAt = 0;
    this.connectedAt = null;
    this.everConnected = false;
    this.audioMuted = false;
    this.videoMuted = false;
    /** What the other side says of its microphone and camera (stream metadata). */
    this.remoteMuted = { audio: false, video: false };
    // Remote candidates by party id, until that party's description is in the peer connection.
    this.remoteCandidates = new Map();
    this.localCandidates = [];
    // Candidates found before our invite/answer's SDP is written ride inside it; those found
    // after go in m.call.candidates (sdpWritten), sent only once the description they belong to
    // is out (candidatesSent), so they never reach the other side before it.
    this.sdpWritten = false;
    this.candidatesSent = false;
    this.gatheringDone = false;
    this.candidateTimer = null;
    this.timer = null;
    /** @type {Promise<MediaStream>|null} */
    this.mediaPromise = null;
    this.established = false;
    /** A restart asked for before our description was out: done once it is (see _restartIce). */
    this.restartWhenEstablished = false;
    /** @type {IceRecovery|null} restarts ICE when the connection fails or drops */
    this.recovery = null;
    this.remoteReady = false;
    this.makingOffer = false;
    this.chain = Promise.resolve();
  }

  get client() {
    return this.manager.client;
  }

  get ended() {
    return this.state === "ended";
  }

  /** The caller is impolite, the callee polite (spec: "Politeness"). */
  get polite() {
    return this.direction === "inbound";
  }

  _setState(state) {
    if (this.state === state || this.state === "ended") return;
    this.state = state;
    if (state === "connected" && !this.connectedAt) this.connectedAt = Date.now();
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
    this.manager._changed(this);
  }

  /** Run signalling work for this call one step at a time, in the order events arrived. */
  _enqueue(fn) {
    this.chain = this.chain.then(fn).catch((error) => {
      console.warn("call signalling failed", error);
      if (!this.ended) this._fail(error);
    });
    return this.chain;
  }

  _content(extra) {
    return { call_id: this.callId, party_id: this.partyId, version: VOIP_VERSION, ...extra };
  }

  async _send(type, extra = {}) {
    return this.client.sendEvent(this.roomId, type, this._content(extra));
  }

  _streamMetadata() {
    if (!this.localStream) return undefined;
    return {
      [this.localStream.id]: {
        purpose: "m.usermedia",
        audio_muted: this.audioMuted,
        video_muted: this.videoMuted || this.localStream.getVideoTracks().length === 0,
      },
    };
  }

  /** The stream metadata under both keys, for an event's content (nothing before media). */
  _metadataFields() {
    const metadata = this._streamMetadata();
    if (!metadata) return {};
    return Object.fromEntries(METADATA_KEYS.map((key) => [key, metadata]));
  }

  /** Tell the other side our mute and camera state changed (once the call is set up). */
  _sendMetadataChanged() {
    if (this.ended || !this.localStream || this.opponentPartyId === null) return;
    this._send(METADATA_CHANGED, this._metadataFields()).catch((error) => console.warn("mute state not sent", error));
  }

  /** Stream metadata from the other side (invite, answer, negotiate or a change event). */
  _readRemoteMetadata(content) {
    const state = remoteMuteState(content);
    if (!state) return;
    if (state.audio === this.remoteMuted.audio && state.video === this.remoteMuted.video) return;
    this.remoteMuted = state;
    this.manager._changed(this);
  }

  _getMedia() {
    this.mediaPromise ??= navigator.mediaDevices.getUserMedia({ audio: true, video: this.video });
    return this.mediaPromise;
  }

  async _createPeer() {
    const config = await rtcConfiguration(this.client, this.manager.rtcOptions);
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    pc.addEventListener("icecandidate", (event) => this._onLocalCandidate(event.candidate));
    pc.addEventListener("icegatheringstatechange", () => {
      // An ICE restart gathers afresh, and ends with an end-of-candidates of its own.
      if (pc.iceGatheringState === "gathering") this.gatheringDone = false;
      if (pc.iceGatheringState === "complete") this._onLocalCandidate(null);
    });
    pc.addEventListener("track", (event) => {
      const stream = event.streams[0] ?? this.remoteStream ?? new MediaStream();
      if (!event.streams[0]) stream.addTrack(event.track);
      this.remoteStream = stream;
      this.dispatchEvent(new CustomEvent("remote", { detail: stream }));
      this.manager._changed(this);
    });
    this.recovery = new IceRecovery({
      restart: () => this._restartIce(),
      giveUp: () => this._hangupWith(this.everConnected ? "ice_timeout" : "ice_failed"),
    });
    pc.addEventListener("connectionstatechange", () => this._onConnectionState());
    pc.addEventListener("negotiationneeded", () => this._renegotiate());
    return pc;
  }

  _addLocalTracks() {
    for (const track of this.localStream.getTracks()) this.pc.addTrack(track, this.localStream);
  }

  _onConnectionState() {
    const state = this.pc?.connectionState;
    if (this.ended || !state) return;
    if (state === "connected") {
      this.everConnected = true;
      this._setState("connected");
    } else if ((state === "disconnected" || state === "failed") && this.state === "connected") {
      this._setState("connecting"); // no media flows until it recovers: "Reconnecting…"
    }
    // Failed, or disconnected for too long: restart ICE, a few times, before hanging up with
    // ice_failed (never connected) or ice_timeout (connected, then lost).
    this.recovery?.onState(state);
  }

  /**
   * Restart ICE (spec-compatible, as matrix-js-sdk does): the side whose connection failed calls
   * restartIce(); negotiationneeded follows and _renegotiate sends the offer with fresh
   * credentials in an m.call.negotiate; the other side's answer carries its own, and both gather
   * new candidates. When both sides fail at once, perfect negotiation keeps the caller's offer.
   */
  _restartIce() {
    if (this.ended || !this.pc) return;
    if (!this.established) {
      // _renegotiate could not send the offer yet (nothing of ours has reached them): later.
      this.restartWhenEstablished = true;
      return;
    }
    if (typeof this.pc.restartIce !== "function") {
      // A browser without restartIce (matrix-js-sdk notes Firefox for Android): as before.
      this._hangupWith(this.everConnected ? "ice_timeout" : "ice_failed");
      return;
    }
    console.info(`call ${this.callId}: restarting ICE (attempt ${this.recovery?.attempts})`);
    const pc = this.pc;
    // The TURN credentials of a long call may have run out: the new candidates are gathered
    // with what the homeserver hands out now (cached until shortly before their expiry).
    rtcConfiguration(this.client, this.manager.rtcOptions)
      .then((fresh) => {
        if (this.ended || this.pc !== pc) return;
        try {
          pc.setConfiguration({ ...pc.getConfiguration(), iceServers: fresh.iceServers });
        } catch (error) {
          console.warn("ICE servers not updated for the restart", error);
        }
      })
      .catch((error) => console.warn("ICE servers not read for the restart", error))
      .finally(() => {
        if (!this.ended && this.pc === pc) pc.restartIce();
      });
  }

  /** Our description and theirs are both known to both sides: renegotiation may begin. */
  _markEstablished() {
    this.established = true;
    if (this.restartWhenEstablished) {
      this.restartWhenEstablished = false;
      this._restartIce();
    }
  }

  /** Wait briefly for the first (host) candidates, so they travel inside the SDP itself. */
  async _gatherBriefly() {
    const pc = this.pc;
    if (pc.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timeout);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => pc.iceGatheringState === "complete" && done();
      const timeout = setTimeout(done, INITIAL_GATHER_MS);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  _onLocalCandidate(candidate) {
    if (this.ended) return;
    if (candidate === null) {
      if (this.gatheringDone) return;
      this.gatheringDone = true;
      // End of candidates: the spec asks for an explicit empty candidate.
      const mid = this.pc?.getTransceivers().find((t) => t.mid !== null)?.mid ?? "0";
      this.localCandidates.push({ candidate: "", sdpMid: mid, sdpMLineIndex: 0 });
      if (this.candidatesSent) this._flushCandidates();
      return;
    }
    if (!candidate.candidate) return;
    // Before the invite/answer's SDP is written, candidates ride inside it. One found while its
    // request is on its way (a TURN server answering late) is kept for m.call.candidates: with
    // relay-only ICE it may be the only candidate there is.
    if (!this.sdpWritten) return;
    this.localCandidates.push({
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid,
      sdpMLineIndex: candidate.sdpMLineIndex,
    });
    if (this.candidatesSent) this._scheduleCandidates(this._candidateBatchMs());
  }

  _candidateBatchMs() {
    return this.direction === "outbound" ? CANDIDATE_BATCH_CALLER_MS : CANDIDATE_BATCH_CALLEE_MS;
  }

  /** Our local description, for an invite, answer or negotiate; later candidates trickle. */
  _writtenDescription() {
    this.sdpWritten = true;
    const { type, sdp } = /** @type {RTCSessionDescription} */ (this.pc.localDescription);
    return { type, sdp };
  }

  /**
   * Keep new candidates back while a negotiate's description is on its way (an ICE restart
   * gathers candidates of new credentials: sent first, they would be refused over there).
   */
  _holdCandidates() {
    this.candidatesSent = false;
    clearTimeout(this.candidateTimer);
    this.candidateTimer = null;
  }

  _scheduleCandidates(delay) {
    if (this.candidateTimer) return;
    this.candidateTimer = setTimeout(() => {
      this.candidateTimer = null;
      this._flushCandidates();
    }, delay);
  }

  _flushCandidates() {
    clearTimeout(this.candidateTimer);
    this.candidateTimer = null;
    if (this.ended || !this.candidatesSent || this.localCandidates.length === 0) return;
    const candidates = this.localCandidates;
    this.localCandidates = [];
    this._send("m.call.candidates", { candidates }).catch((error) => console.warn("candidates not sent", error));
  }

  /** Called once the invite/answer/negotiate is out: candidates go in batched m.call.candidates. */
  _afterDescriptionSent(batchDelay = this._candidateBatchMs()) {
    this.candidatesSent = true;
    if (this.gatheringDone) this._flushCandidates();
    else this._scheduleCandidates(batchDelay);
  }

  async _addRemoteCandidates(candidates) {
    for (const c of candidates) {
      if (!c || typeof c.candidate !== "string") continue;
      if (c.candidate === "") continue; // end of candidates
      try {
        await this.pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null });
      } catch (error) {
        console.warn("a remote candidate was refused", error);
      }
    }
  }

  async _useBufferedCandidates() {
    const buffered = this.remoteCandidates.get(this.opponentPartyId) ?? [];
    this.remoteCandidates.clear();
    await this._addRemoteCandidates(buffered);
  }

  // --- outbound --------------------------------------------------------------------------------

  async _placeCall() {
    try {
      this.localStream = await this._getMedia();
    } catch (error) {
      this._end("user_media_failed", "local");
      throw error;
    }
    this.dispatchEvent(new CustomEvent("local", { detail: this.localStream }));
    if (this.state !== "preparing") return; // replaced by an incoming call (glare) or cancelled
    await this._createPeer();
    this._addLocalTracks();
    this.makingOffer = true;
    try {
      await this.pc.setLocalDescription(await this.pc.createOffer());
    } finally {
      this.makingOffer = false;
    }
    await this._gatherBriefly();
    if (this.state !== "preparing") return;
    // From here the invite is on its way: glare is settled by call ids, not by replacing ours.
    this._setState("inviting");
    const lifetime = this.manager.inviteLifetimeMs;
    this.expiresAt = Date.now() + lifetime;
    await this._send("m.call.invite", {
      lifetime,
      offer: this._writtenDescription(),
      invitee: this.opponentUserId,
      ...this._metadataFields(),
    });
    this._afterDescriptionSent(CANDIDATE_BATCH_CALLER_MS);
    this.timer = setTimeout(() => {
      if (this.state === "inviting") this._hangupWith("invite_timeout");
    }, lifetime);
  }

  async _onAnswer(event) {
    const content = event.content;
    if (this.direction !== "outbound" || this.opponentPartyId !== null || this.ended) return;
    if (!validDescription(content.answer)) return;
    // The first answer wins; others (another device of theirs) learn from our select_answer.
    this.opponentPartyId = String(content.party_id ?? "");
    this.opponentUserId = event.sender;
    this._readRemoteMetadata(content);
    clearTimeout(this.timer);
    this._setState("connecting");
    this._send("m.call.select_answer", { selected_party_id: this.opponentPartyId }).catch((error) =>
      console.warn("select_answer not sent", error),
    );
    await this.pc.setRemoteDescription({ type: "answer", sdp: content.answer.sdp });
    this._markEstablished();
    this.remoteReady = true;
    await this._useBufferedCandidates();
  }

  // --- inbound ---------------------------------------------------------------------------------

  _fromInvite(event, receivedAt) {
    const content = event.content;
    this.opponentPartyId = String(content.party_id ?? "");
    this._readRemoteMetadata(content);
    this.offer = { type: "offer", sdp: content.offer.sdp };
    this.video = isVideoSdp(content.offer.sdp);
    this.expiresAt = Date.now() + remainingLifetime(event, receivedAt);
    this.inviteEventId = event.event_id;
    this.timer = setTimeout(() => {
      // Nobody picked up: the caller sends the hangup (invite_timeout); we just stop ringing.
      if (this.state === "ringing") this._end("missed", "remote");
    }, Math.max(0, this.expiresAt - Date.now()));
  }

  /**
   * Pick up. `media` lets a call replaced in glare hand its camera and microphone over.
   * @param {{media?: Promise<MediaStream>}} [options]
   */
  answer({ media } = {}) {
    if (this.state !== "ringing") return Promise.resolve();
    clearTimeout(this.timer);
    this._setState("answering");
    if (media) this.mediaPromise = media;
    return this._enqueue(async () => {
      try {
        this.localStream = await this._getMedia();
      } catch (error) {
        await this._hangupWith("user_media_failed");
        throw error;
      }
      this.dispatchEvent(new CustomEvent("local", { detail: this.localStream }));
      if (this.ended) return;
      await this._createPeer();
      await this.pc.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (this.offer));
      this.remoteReady = true;
      await this._useBufferedCandidates();
      this._addLocalTracks();
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      await this._gatherBriefly();
      if (this.ended) return;
      this._setState("connecting");
      await this._send("m.call.answer", {
        answer: this._writtenDescription(),
        ...this._metadataFields(),
      });
      this._markEstablished();
      this._afterDescriptionSent(CANDIDATE_BATCH_CALLEE_MS);
    });
  }

  /** Decline a ringing call everywhere (our other devices stop ringing too). */
  async reject() {
    if (this.state !== "ringing") return;
    this._end("rejected", "local");
    await this._send("m.call.reject", {});
  }

  // --- both ------------------------------------------------------------------------------------

  /** End the call: a ringing call is rejected, any other sends m.call.hangup (user_hangup). */
  async hangup() {
    if (this.state === "ringing") return this.reject();
    if (this.state === "preparing") {
      // Nothing was sent yet: nobody else knows of this call.
      this._end("user_hangup", "local");
      return undefined;
    }
    return this._hangupWith("user_hangup");
  }

  async _hangupWith(reason) {
    if (this.ended) return;
    this._end(reason, "local");
    try {
      await this._send("m.call.hangup", { reason });
    } catch (error) {
      console.warn("hangup not sent", error);
    }
  }

  _fail(error) {
    const reason = error?.name === "NotAllowedError" || error?.name === "NotFoundError" ? "user_media_failed" : "unknown_error";
    if (this.state === "preparing" || this.state === "ringing") this._end(reason, "local");
    else this._hangupWith(reason);
  }

  /** Stop everything locally; `replaced` keeps the media for the call that takes over. */
  _end(reason, by, { keepMedia = false } = {}) {
    if (this.ended) return;
    clearTimeout(this.timer);
    clearTimeout(this.candidateTimer);
    this.endReason = reason;
    this.endedBy = by;
    this.endedAt = Date.now();
    this.recovery?.stop();
    if (this.pc) {
      this.pc.close();
    }
    if (!keepMedia) {
      for (const track of this.localStream?.getTracks() ?? []) track.stop();
      if (this.mediaPromise && !this.localStream) {
        this.mediaPromise.then((s) => s.getTracks().forEach((t) => t.stop())).catch(() => {});
      }
    }
    this.state = "ended";
    this.dispatchEvent(new CustomEvent("state", { detail: "ended" }));
    this.manager._changed(this);
  }

  /**
   * The page is going away: hang up with a request that outlives it (fetch keepalive), so the
   * other side ends at once rather than when ICE gives up. A call still ringing here is left to
   * ring on the person's other devices.
   */
  _hangupOnUnload() {
    if (this.ended || this.state === "ringing" || this.state === "preparing") return;
    const content = this._content({ reason: "user_hangup" });
    this._end("user_hangup", "local");
    // If it is lost, the other side still ends the call when the connection fails.
    this.client.sendEventOnUnload(this.roomId, "m.call.hangup", content);
  }

  /** Mute or unmute the microphone (no renegotiation: the track stays, silent). */
  setAudioMuted(muted) {
    this.audioMuted = muted;
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = !muted;
    this._sendMetadataChanged();
    this.manager._changed(this);
  }

  /**
   * Turn the camera on or off. Off disables the track; on, in a call that had no camera, adds
   * a video track and renegotiates with m.call.negotiate.
   */
  async setVideoMuted(muted) {
    this.videoMuted = muted;
    const tracks = this.localStream?.getVideoTracks() ?? [];
    if (tracks.length > 0) {
      for (const track of tracks) track.enabled = !muted;
      this._sendMetadataChanged();
    } else if (!muted && this.pc && !this.ended) {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      const [track] = stream.getVideoTracks();
      this.localStream.addTrack(track);
      this.pc.addTrack(track, this.localStream);
      this.video = true;
      // The m.call.negotiate that follows carries the new state.
      this.dispatchEvent(new CustomEvent("local", { detail: this.localStream }));
    }
    this.manager._changed(this);
  }

  async _renegotiate() {
    if (!this.established || this.ended || !this.pc) return;
    this._holdCandidates();
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      await this._send("m.call.negotiate", {
        lifetime: this.manager.inviteLifetimeMs,
        description: this._writtenDescription(),
        ...this._metadataFields(),
      });
    } catch (error) {
      console.warn("renegotiation failed", error);
    } finally {
      this.makingOffer = false;
      this._afterDescriptionSent();
    }
  }

  async _onNegotiate(event, receivedAt) {
    if (!this.pc || this.ended) return;
    // Older clients put the description in `offer`; the spec names it `description`.
    const description = event.content.description ?? event.content.offer;
    if (!validDescription(description)) return;
    if (remainingLifetime(event, receivedAt) <= 0 && Number.isFinite(Number(event.content.lifetime))) return;
    const collision = description.type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
    if (collision && !this.polite) return; // perfect negotiation: the impolite side keeps its offer
    // An answer to an offer we no longer have (rolled back when both restarted ICE at once, its
    // events reordered on the way): applying it would throw and end the call.
    if (description.type === "answer" && this.pc.signalingState !== "have-local-offer") return;
    this._readRemoteMetadata(event.content);
    await this.pc.setRemoteDescription({ type: description.type, sdp: description.sdp });
    if (description.type === "offer") {
      this._holdCandidates();
      try {
        await this.pc.setLocalDescription();
        await this._send("m.call.negotiate", {
          lifetime: this.manager.inviteLifetimeMs,
          description: this._writtenDescription(),
          ...this._metadataFields(),
        });
      } finally {
        this._afterDescriptionSent();
      }
    }
  }

  /** An event of this call from the other side (never our own echo). */
  _onEvent(event, receivedAt) {
    const content = event.content;
    const fromOpponent =
      event.sender === this.opponentUserId &&
      // Version 0 clients send no party_id: theirs is "" throughout.
      (this.opponentPartyId === null || String(content.party_id ?? "") === this.opponentPartyId);
    switch (event.type) {
      case "m.call.answer":
        if (event.sender === this.manager.userId && this.direction === "inbound") {
          // Our other device picked up.
          if (this.state === "ringing") this._end("answered_elsewhere", "remote");
          return;
        }
        this._enqueue(() => this._onAnswer(event));
        return;
      case "m.call.select_answer":
        if (this.direction === "inbound" && fromOpponent && content.selected_party_id !== this.partyId) {
          if (!this.ended) this._end("answered_elsewhere", "remote");
        }
        return;
      case "m.call.candidates": {
        if (event.sender === this.manager.userId) return;
        const list = Array.isArray(content.candidates) ? content.candidates : [];
        const party = String(content.party_id ?? "");
        if (this.remoteReady && party === this.opponentPartyId) {
          this._enqueue(() => this._addRemoteCandidates(list));
        } else {
          const buffer = this.remoteCandidates.get(party) ?? [];
          buffer.push(...list);
          this.remoteCandidates.set(party, buffer);
        }
        return;
      }
      case "m.call.negotiate":
        if (fromOpponent && this.opponentPartyId !== null) this._enqueue(() => this._onNegotiate(event, receivedAt));
        return;
      case "m.call.sdp_stream_metadata_changed":
      case "org.matrix.call.sdp_stream_metadata_changed":
        if (fromOpponent && this.opponentPartyId !== null) this._readRemoteMetadata(content);
        return;
      case "m.call.reject":
        if (event.sender === this.manager.userId && this.direction === "inbound") {
          if (this.state === "ringing") this._end("rejected_elsewhere", "remote");
          return;
        }
        // A reject after we picked an answer is ignored (spec).
        if (this.direction === "outbound" && this.opponentPartyId === null && !this.ended) this._end("rejected", "remote");
        return;
      case "m.call.hangup":
        if (event.sender === this.manager.userId) return;
        if (fromOpponent || (this.direction === "outbound" && this.opponentPartyId === null)) {
          if (!this.ended) this._end(String(content.reason ?? "user_hangup"), "remote");
        }
        return;
      default:
    }
  }
}

/**
 * Every 1:1 call of this signed-in client. Listen for "change" (detail: the call whose state,
 * streams or mute changed) and "incoming" (detail: a call that now rings).
 */
export class DirectCalls extends EventTarget {
  /**
   * @param {object} options
   * @param {import("../matrix.js").MatrixClient} options.client
   * @param {import("../sync.js").SyncEngine} options.sync
   * @param {string} options.userId
   */
  constructor({ client, sync, userId }) {
    super();
    this.client = client;
    this.sync = sync;
    this.userId = userId;
    /** @type {Map<string, DirectCall>} call id → call */
    this.calls = new Map();
    /** Call ids we have seen an invite for and decided not to ring (expired, glare loser...). */
    this.ignored = new Set();
    this.inviteLifetimeMs = INVITE_LIFETIME_MS;
    /** Extra RTCConfiguration options (tests: {iceTransportPolicy: "relay"}). */
    this.rtcOptions = {};
    this._onPageHide = () => {
      for (const call of this.calls.values()) call._hangupOnUnload();
    };
    window.addEventListener("pagehide", this._onPageHide);
  }

  /** Signed out: hang up what is in progress and stop listening to the page. */
  destroy() {
    window.removeEventListener("pagehide", this._onPageHide);
    for (const call of this.calls.values()) if (!call.ended) call.hangup();
  }

  /** The call in progress or ringing for the person, if any (the newest not ended). */
  get current() {
    let best = null;
    for (const call of this.calls.values()) if (!call.ended) best = call;
    return best;
  }

  _changed(call) {
    this.dispatchEvent(new CustomEvent("change", { detail: call }));
  }

  /** The other joined member of a room meant for 1:1 calls, or null. */
  opponentIn(roomId) {
    const room = this.sync.room(roomId);
    if (!room) return null;
    const joined = room
      .stateOfType("m.room.member")
      .filter((e) => e.content?.membership === "join")
      .map((e) => e.state_key);
    const others = joined.filter((u) => u !== this.userId);
    if (others.length === 1 && joined.length <= 2) return others[0];
    // Lazy-loaded members may be partial: m.direct says who the conversation is with.
    const direct = this.sync.accountData.get("m.direct") ?? {};
    for (const [user, rooms] of Object.entries(direct)) {
      if (Array.isArray(rooms) && rooms.includes(roomId) && user !== this.userId) {
        return others.length <= 1 ? user : null;
      }
    }
    return null;
  }

  /** Start a call in a DM room. Answers the DirectCall (ringing happens on the other side). */
  placeCall(roomId, { video = true } = {}) {
    const opponent = this.opponentIn(roomId);
    if (!opponent) throw new Error("Calls are only possible in a conversation with one other person.");
    if (this.sync.room(roomId)?.getState("m.room.encryption")) {
      // The offer and candidates would go out in clear text (IP addresses) in a room people
      // expect to be private: refuse rather than leak.
      throw new Error("This conversation is end-to-end encrypted: Guilds cannot place calls in it.");
    }
    // They are calling us here already: calling them back means picking up (glare, a little late).
    const theirs = [...this.calls.values()].find((c) => c.roomId === roomId && c.state === "ringing");
    if (theirs) {
      theirs.answer();
      return theirs;
    }
    // One call at a time: the one in progress ends (calls ringing elsewhere keep ringing).
    for (const other of this.calls.values()) if (!other.ended && other.state !== "ringing") other.hangup();
    const call = new DirectCall(this, { roomId, callId: voipId(20), direction: "outbound", video, opponentUserId: opponent });
    this.calls.set(call.callId, call);
    this._changed(call);
    call._enqueue(() => call._placeCall());
    return call;
  }

  /**
   * New timeline events of one sync batch, by room (oldest first). Signals an incoming call only
   * after the whole batch is read.
   * @param {Map<string, object[]>} byRoom
   */
  handleBatch(byRoom, receivedAt = Date.now()) {
    const rang = [];
    for (const [roomId, events] of byRoom) {
      for (const event of events) {
        if (event.type === "m.room.member" && event.content?.membership !== "join") {
          this._onLeave(roomId, event.state_key);
          continue;
        }
        if (!CALL_EVENT_TYPES.has(event.type)) continue;
        const content = event.content;
        if (!content || typeof content.call_id !== "string" || !content.call_id) continue;
        const call = this.calls.get(content.call_id);
        // Our own echo: the same party id we sent with.
        if (event.sender === this.userId && call && content.party_id === call.partyId) continue;
        if (event.type === "m.call.invite") {
          this._redrawAtExpiry(roomId, event, receivedAt);
          const incoming = this._onInvite(roomId, event, receivedAt);
          if (incoming) rang.push(incoming);
        } else if (call && call.roomId === roomId) {
          call._onEvent(event, receivedAt);
        }
      }
    }
    for (const call of rang) {
      if (call.state === "ringing") this.dispatchEvent(new CustomEvent("incoming", { detail: call }));
    }
  }

  /** An invite left unanswered becomes a missed-call line once it expires: redraw then. */
  _redrawAtExpiry(roomId, event, receivedAt) {
    const remaining = remainingLifetime(event, receivedAt);
    if (remaining <= 0 || remaining > 10 * 60_000) return;
    setTimeout(() => this.sync.touch(roomId), remaining + 1_000);
  }

  /** We left (or lost) a room: its calls end here; nothing can be sent there any more. */
  checkRooms() {
    for (const call of this.calls.values()) {
      if (!call.ended && !this.sync.room(call.roomId)) call._end("user_hangup", "local");
    }
  }

  /** Spec, "Behaviour on Room Leave": the other person leaving the room ends the call. */
  _onLeave(roomId, leaver) {
    for (const call of this.calls.values()) {
      if (call.roomId === roomId && call.opponentUserId === leaver && !call.ended) {
        call._end(call.state === "ringing" ? "missed" : "user_hangup", "remote");
      }
    }
  }

  _onInvite(roomId, event, receivedAt) {
    const content = event.content;
    const callId = content.call_id;
    if (this.calls.has(callId) || this.ignored.has(callId)) return null;
    if (event.sender === this.userId) return null; // our own call from another device
    if (typeof content.invitee === "string" && content.invitee !== this.userId) return null;
    if (!validDescription(content.offer)) return null;
    if (remainingLifetime(event, receivedAt) < MIN_RING_MS) {
      this.ignored.add(callId);
      return null;
    }
    if (this.opponentIn(roomId) !== event.sender) {
      // Not a 1:1 conversation with them: someone else in the room could pick up. Do not ring.
      this.ignored.add(callId);
      return null;
    }
    const call = new DirectCall(this, { roomId, callId, direction: "inbound", video: true, opponentUserId: event.sender });
    call._fromInvite(event, receivedAt);

    // Glare: do we have a call of our own to them in this room?
    const ours = [...this.calls.values()].find(
      (c) => c.roomId === roomId && c.direction === "outbound" && (c.state === "preparing" || c.state === "inviting"),
    );
    if (ours) {
      if (ours.state === "inviting" && ours.callId < callId) {
        // Ours is the lesser: it survives; theirs is abandoned by them.
        this.ignored.add(callId);
        return null;
      }
      // Theirs survives: drop ours (hang it up if it went out) and answer theirs with our media.
      const media = ours._getMedia();
      if (ours.state === "inviting") {
        ours._end("replaced", "local", { keepMedia: true });
        ours._send("m.call.hangup", { reason: "user_hangup" }).catch((error) => console.warn("hangup not sent", error));
      } else {
        ours._end("replaced", "local", { keepMedia: true });
      }
      call.video = call.video || ours.video;
      this.calls.set(callId, call);
      this._changed(call);
      call.answer({ media });
      return null;
    }
    this.calls.set(callId, call);
    return call;
  }
}
