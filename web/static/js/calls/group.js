// Group calls in voice and video channels: MatrixRTC membership in room state, media in a full
// mesh signalled with to-device VoIP events (the MSC3401 mesh scheme).
//
// Joining writes `org.matrix.msc3401.call.member` in the shape matrix-js-sdk 43 (Element Call)
// writes and parses: state key `_@user:server_DEVICE_m.call`, `m.call.intent` "audio" (voice
// channel) or "video"; leaving writes `{}`. The membership expires (`expires` after `created_ts`,
// as MatrixRTC reads it; also given as `expires_ts`) unless this tab refreshes it, so a tab that
// dies leaves no ghost: the bridge clears memberships past their expiry (bridge/calls.py).
// Memberships in the older Guilds key shape (`_@user:server_DEVICE`) are read alike. A member
// whose active focus is not the mesh (Element Call's LiveKit SFU) cannot be reached from here:
// they are listed as "in the call from another app", and no connection is attempted. See
// docs/CALLS.md.
//
// Every pair of participants has one RTCPeerConnection. The side whose (user id, device id) sorts
// first places the call (`m.call.invite`); the other answers. Every to-device message carries
// `conf_id` (the room id), `device_id`, `sender_session_id`, `dest_session_id`, `seq`,
// `call_id`, `party_id` and `version: "1"`. Later changes (camera, screen share) are offered with
// `m.call.negotiate`, glare there resolved by the same order (the later one rolls back).

import { MatrixError } from "../matrix.js";
import { rtcConfiguration } from "./ice.js";
import { peerStats } from "./stats.js";
import { JANUS_FOCUS, JanusTransport } from "./janus.js";

export const CALL_MEMBER = "org.matrix.msc3401.call.member";
export const MAX_PARTICIPANTS = 8;
const GUILDS_FOCI = new Set(["mesh", JANUS_FOCUS]);
// The bridge's answer when no SFU is configured: the call runs on the mesh.
const NO_SFU = "GUILDS_NO_SFU";
const VERSION = "1";
// How long an offer may wait for its answer before the caller tries again.
const INVITE_LIFETIME_MS = 30_000;
const MAX_ATTEMPTS = 3;
// Speaking: the loudest 10 ms block since the last poll is above this RMS level; the indicator
// stays on for SPEAKING_HOLD_MS after the last loud block, so it does not flicker between words.
const SPEAKING_LEVEL = 0.02;
const SPEAKING_BLOCK_S = 0.01;
const SPEAKING_HOLD_MS = 400;
const SPEAKING_POLL_MS = 150;

/**
 * Membership timing: production values; tests shorten them with setCallTiming(). A membership
 * counts for `graceMs` past its expiry, so a refresh delayed by a slow homeserver or sync does
 * not make someone flicker out of the call; the bridge clears it for good soon after.
 *
 * Where the homeserver has delayed events (MSC4140), joining first schedules our own leave
 * (`{}`) `leaveDelayMs` ahead, and the tab pushes it back every `leaveRestartMs`: a tab that
 * dies without a goodbye is out of the call `leaveDelayMs` later, written by the homeserver.
 */
const timing = { expiresMs: 45_000, refreshMs: 15_000, graceMs: 10_000, leaveDelayMs: 10_000, leaveRestartMs: 4_000 };

/**
 * Camera constraints. A mesh sends one stream per peer (up to 7), so a modest size by default;
 * tests ask for less still, to spare a loaded machine.
 */
const media = { video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 20 } } };

/**
 * What each outgoing video stream may use, by how many peers we send to. In a full mesh every
 * participant encodes one stream per peer, so the per-stream budget shrinks as the call grows:
 * the upload (about 1.2–1.4 Mbit/s in all) and the encoding work stay roughly what a two-person
 * call costs, and 8 people fit on a laptop. A screen share keeps its full resolution (text must
 * stay legible) and gives up frame rate instead.
 */
export function videoEncoding(peerCount, { screen = false } = {}) {
  const tier =
    peerCount <= 1
      ? { maxBitrate: 1_200_000, maxFramerate: 20, scaleResolutionDownBy: 1 }
      : peerCount <= 3
        ? { maxBitrate: 450_000, maxFramerate: 20, scaleResolutionDownBy: 1 }
        : peerCount <= 5
          ? { maxBitrate: 280_000, maxFramerate: 15, scaleResolutionDownBy: 2 }
          : { maxBitrate: 200_000, maxFramerate: 12, scaleResolutionDownBy: 2 };
  if (!screen) return tier;
  return { maxBitrate: Math.max(tier.maxBitrate, 300_000), maxFramerate: Math.min(tier.maxFramerate, 10), scaleResolutionDownBy: 1 };
}

/** Replace the camera constraints (tests, weak devices): a MediaTrackConstraints object. */
export function setCameraConstraints(video) {
  if (video && typeof video === "object") media.video = video;
}

/**
 * Shorten (tests) or restore the membership expiry, its refresh period and the delayed leave,
 * in milliseconds.
 * @param {{expiresMs?: number, refreshMs?: number, leaveDelayMs?: number, leaveRestartMs?: number}} [changes]
 */
export function setCallTiming(changes = {}) {
  for (const key of ["expiresMs", "refreshMs", "leaveDelayMs", "leaveRestartMs"]) {
    const value = changes[key];
    if (Number.isFinite(value) && value > 0) timing[key] = value;
  }
}

export class CallError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CallError";
    this.code = code;
  }
}

/** The state key of a device's membership, as matrix-js-sdk 43 makes it for a room call. */
export function memberKey(userId, deviceId) {
  return `_${userId}_${deviceId}_m.call`;
}

/** The `m.call.intent` of a channel's calls (matrix-js-sdk 43 warns about a membership without). */
export function callIntent(kind) {
  return kind === "video" ? "video" : "audio";
}

/**
 * When a membership event stops counting, in ms since the epoch. As matrix-js-sdk 43 reads it:
 * `expires` after `created_ts` (or the event's timestamp); `expires_ts` only when `expires` is
 * absent; four hours when neither says.
 */
export function membershipExpiry(event) {
  const content = event?.content ?? {};
  const start = Number.isFinite(content.created_ts) ? content.created_ts : (event.origin_server_ts ?? 0);
  if (Number.isFinite(content.expires)) return start + content.expires;
  if (Number.isFinite(content.expires_ts)) return content.expires_ts;
  return start + 4 * 3600_000;
}

/** Whether Guilds can reach this member: its active focus is the mesh (or, as Guilds once wrote
 *  it, not given). Element Call's members name a LiveKit SFU instead. */
export function meshMembership(content) {
  return focusOf(content) === "mesh";
}

/** The transport a membership's active focus names: "mesh" (also when not given, as Guilds once
 *  wrote it), Guilds' Janus SFU (`org.guilds.janus`), or another (Element Call's `livekit`). */
export function focusOf(content) {
  const focus = content?.focus_active;
  if (focus === undefined) return "mesh";
  return typeof focus === "object" && focus !== null && typeof focus.type === "string" ? focus.type : "unknown";
}

/**
 * What a membership says of the member's media (`org.guilds.call`, docs/CALLS.md): muted,
 * deafened, camera off, sharing their screen; null when it says nothing (another app, or a
 * Guilds tab from before the marks).
 * @returns {{audioMuted: boolean, videoMuted: boolean, deafened: boolean, screenshare: boolean} | null}
 */
export function marksOf(content) {
  const own = content?.["org.guilds.call"];
  if (!own || typeof own !== "object" || typeof own.audio_muted !== "boolean") return null;
  return {
    audioMuted: own.audio_muted,
    videoMuted: own.video_muted === true,
    deafened: own.deafened === true,
    screenshare: own.screenshare === true,
  };
}

/** The user id a membership state key names (`_@u:s_DEV`, `@u:s_DEV` or `@u:s`). */
export function userOfKey(key) {
  const bare = key.startsWith("_") ? key.slice(1) : key;
  const colon = bare.indexOf(":");
  if (colon < 0) return bare;
  const underscore = bare.indexOf("_", colon);
  return underscore < 0 ? bare : bare.slice(0, underscore);
}

/**
 * The live call members of a room from its state: [{userId, deviceId, sessionId, key, since,
 * foreign}], oldest first; `foreign` when the member uses a transport Guilds cannot join. Memberships that are empty, past their expiry, or not a room-scoped `m.call`
 * don't count; neither does one whose state key names another user than its sender.
 * @param {import("../sync.js").Room | null} room
 */
export function callMembers(room, now = Date.now(), { includeExpired = false } = {}) {
  if (!room) return [];
  const members = [];
  for (const event of room.stateOfType(CALL_MEMBER)) {
    const content = event.content ?? {};
    if (!content.application || content.application !== "m.call") continue;
    if (content.scope && content.scope !== "m.room") continue;
    if (typeof content.device_id !== "string" || !content.device_id) continue;
    const userId = userOfKey(event.state_key);
    if (event.sender && userId !== event.sender) continue;
    if (!includeExpired && membershipExpiry(event) + timing.graceMs <= now) continue;
    // Left, kicked or banned: out of the call too (a member event we do not hold says nothing).
    const membership = room.getState("m.room.member", userId)?.content?.membership;
    if (membership !== undefined && membership !== "join") continue;
    members.push({
      userId,
      deviceId: content.device_id,
      sessionId: typeof content.membershipID === "string" ? content.membershipID : `${event.origin_server_ts ?? ""}`,
      key: event.state_key,
      since: Number.isFinite(content.created_ts) ? content.created_ts : (event.origin_server_ts ?? 0),
      focus: focusOf(content),
      marks: marksOf(content),
      // Neither of Guilds' transports: in the call from another app.
      foreign: !GUILDS_FOCI.has(focusOf(content)),
    });
  }
  return members.sort((a, b) => a.since - b.since);
}

function randomId(bytes = 12) {
  const raw = new Uint8Array(bytes);
  crypto.getRandomValues(raw);
  return Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
}

function compareParty(a, b) {
  if (a.userId !== b.userId) return a.userId < b.userId ? -1 : 1;
  if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
  return 0;
}

let activeCall = null;

/** The call this tab is in, or null (tests read stats through it). */
export function currentCall() {
  return activeCall;
}

/**
 * One device's presence in one channel's call. Events: "change" (participants, states, local
 * media), "ended" (detail: reason).
 */
export class GroupCall extends EventTarget {
  /**
   * @param {object} options
   * @param {import("../matrix.js").MatrixClient} options.client
   * @param {import("../sync.js").SyncEngine} options.sync
   * @param {{userId: string, deviceId: string}} options.session
   * @param {string} options.roomId
   * @param {"voice" | "video"} options.kind
   * @param {boolean} options.canVideo  the `video` permission in this channel
   * @param {import("../guilds-api.js").GuildsApi} [options.api]  asks the bridge for SFU
   *   credentials; without it (or without an SFU configured) the call runs on the mesh
   * @param {string} [options.serverId]  the channel's server (the credentials' path)
   */
  constructor({ client, sync, session, roomId, kind, canVideo, api = null, serverId = null }) {
    super();
    this.client = client;
    this.sync = sync;
    this.me = { userId: session.userId, deviceId: session.deviceId };
    this.roomId = roomId;
    this.kind = kind === "video" ? "video" : "voice";
    this.canVideo = this.kind === "video" && Boolean(canVideo);
    this.api = api;
    this.serverId = serverId;
    /** "mesh", or JANUS_FOCUS while the call's media goes through the SFU. */
    this.focusType = "mesh";
    /** @type {JanusTransport | null} */
    this.transport = null;
    this.sessionId = randomId();
    this.key = memberKey(this.me.userId, this.me.deviceId);
    this.state = "idle"; // idle | joining | joined | left
    /** @type {Map<string, Peer>} "user|device" → peer */
    this.peers = new Map();
    /** Members in this call through a transport Guilds cannot join (Element Call's SFU). */
    this.foreign = [];
    /** Signalling from devices whose membership we have not seen yet: id → [{event, at}] */
    this.pending = new Map();
    this.micStream = null; // audio (+ camera) from getUserMedia
    this.cameraTrack = null;
    this.screenTrack = null;
    this.muted = false;
    this.deafened = false;
    this.createdTs = 0;
    this._refreshTimer = null;
    // Our delayed leave (MSC4140) while in the call, and the timer that pushes it back.
    this._delayId = null;
    this._leaveTimer = null;
    this._rejoining = false;
    this._rejoinedFor = null;
    this._marksWrite = null;
    this._marksAgain = false;
    this._onUpdate = (event) => {
      if (event.detail.state.get(this.roomId)?.has(CALL_MEMBER) || event.detail.rooms.has(this.roomId)) {
        this._reconcile();
      }
    };
    this._onToDevice = (event) => this._handleToDevice(event.detail);
    this._onPageHide = () => this._leaveBestEffort();
  }

  get peerList() {
    return [...this.peers.values()];
  }

  /** The local media as one stream (for the self tile): mic + camera or screen. */
  get localVideoTrack() {
    return this.screenTrack ?? this.cameraTrack;
  }

  // --- joining and leaving -------------------------------------------------------------------

  /** Credentials for this channel's SFU room from the bridge; null when none is configured. */
  async _sfuCredentials() {
    if (!this.api || !this.serverId) return null;
    try {
      return await this.api.channelSfu(this.serverId, this.roomId, this.me.deviceId);
    } catch (error) {
      if (error?.errcode === NO_SFU) return null;
      throw error;
    }
  }

  async join() {
    if (this.state !== "idle") return;
    this.state = "joining";
    let credentials;
    try {
      credentials = await this._sfuCredentials();
    } catch (error) {
      if (this.state !== "joining") return;
      this.state = "left";
      throw new CallError("sfu", `Guilds could not open the call: ${error.message}`);
    }
    if (credentials) this.focusType = JANUS_FOCUS;
    const room = this.sync.room(this.roomId);
    const others = callMembers(room).filter((m) => !(m.userId === this.me.userId && m.deviceId === this.me.deviceId));
    // The mesh holds MAX_PARTICIPANTS; the SFU, the room the bridge created (docs/CALLS.md).
    if (!credentials && others.length >= MAX_PARTICIPANTS) {
      this.state = "left";
      throw new CallError(
        "full",
        `This channel is full: ${others.length} people are in the call, and a call holds ${MAX_PARTICIPANTS}.`,
      );
    }
    try {
      const wantVideo = this.canVideo;
      this.micStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: wantVideo && media.video });
    } catch (error) {
      // No camera (or it was refused): join with the microphone alone.
      try {
        this.micStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      } catch (inner) {
        if (this.state !== "joining") return;
        this.state = "left";
        throw new CallError("media", `Guilds could not use your microphone: ${inner.message || error.message}`);
      }
    }
    if (this.state !== "joining") {
      // Left (another channel was clicked) while the browser was asked for the microphone.
      this._stopLocalMedia();
      return;
    }
    // A voice channel never sends video, whatever getUserMedia answered.
    for (const track of this.micStream.getVideoTracks()) {
      if (this.canVideo) this.cameraTrack = track;
      else {
        track.stop();
        this.micStream.removeTrack(track);
      }
    }
    if (credentials) {
      this.transport = new JanusTransport(this, () => this._sfuCredentials());
      try {
        await this.transport.start(credentials);
      } catch (error) {
        this.transport = null;
        this._stopLocalMedia();
        if (this.state !== "joining") return;
        this.state = "left";
        throw new CallError("sfu", `Guilds could not reach the call server: ${error.message}`);
      }
      if (this.state !== "joining") {
        this.transport.stop();
        this.transport = null;
        this._stopLocalMedia();
        return;
      }
    }
    this.createdTs = Date.now();
    try {
      // The leave first: should this tab die right after the membership is written, it still
      // leaves.
      await this._scheduleLeave();
      await this._writeMembership();
    } catch (error) {
      this.transport?.stop();
      this.transport = null;
      this._stopLocalMedia();
      if (this.state !== "joining") return;
      this.state = "left";
      await this._writeLeave();
      throw error;
    }
    if (this.state !== "joining") {
      // Left while the membership was being written: take it back, so no call stays behind.
      await this._writeLeave();
      return;
    }
    this.state = "joined";
    activeCall = this;
    this.sync.addEventListener("update", this._onUpdate);
    this.sync.addEventListener("to_device", this._onToDevice);
    window.addEventListener("pagehide", this._onPageHide);
    this._refreshTimer = setInterval(() => this._refresh(), timing.refreshMs);
    this._leaveTimer = setInterval(() => this._restartLeave(), timing.leaveRestartMs);
    // A device is in one call at a time: the membership another tab of this session (or a tab
    // that died) left in another channel goes.
    this._leaveOtherCalls();
    this._reconcile();
    this._changed();
  }

  membershipContent() {
    const now = Date.now();
    return {
      application: "m.call",
      call_id: "",
      scope: "m.room",
      device_id: this.me.deviceId,
      // A full mesh needs no SFU: no focus is preferred, and the active one says so. On the SFU,
      // both name Guilds' Janus focus, whose credentials come from the bridge (docs/CALLS.md).
      focus_active: { type: this.focusType },
      foci_preferred: this.transport ? [{ type: JANUS_FOCUS }] : [],
      membershipID: this.sessionId,
      "m.call.intent": callIntent(this.kind),
      created_ts: this.createdTs,
      // Relative to created_ts, as MatrixRTC reads it; expires_ts is the same instant, absolute.
      expires: now + timing.expiresMs - this.createdTs,
      expires_ts: now + timing.expiresMs,
      // Every participant's marks, on either transport, readable by any Matrix client.
      "org.guilds.call": {
        kind: this.kind,
        audio_muted: this.muted,
        deafened: this.deafened,
        video_muted: !this.cameraTrack,
        screenshare: Boolean(this.screenTrack),
      },
    };
  }

  _writeMembership() {
    return this.client.putState(this.roomId, CALL_MEMBER, this.key, this.membershipContent());
  }

  /**
   * Schedule our own leave (`{}` on our membership) `leaveDelayMs` ahead, as a delayed state
   * event (MSC4140); the homeserver sends it unless the tab keeps pushing it back. Without
   * delayed events (the homeserver refuses them) the expiry and the bridge's sweep remain.
   */
  async _scheduleLeave() {
    try {
      const answer = await this.client.putState(this.roomId, CALL_MEMBER, this.key, {}, {
        delayMs: timing.leaveDelayMs,
      });
      // A homeserver that does not know the parameter wrote `{}` at once, with no delay_id.
      this._delayId = typeof answer?.delay_id === "string" ? answer.delay_id : null;
    } catch (error) {
      // Refused (not enabled, or a smaller maximum delay); a network error fails the join next.
      if (!(error instanceof MatrixError)) throw error;
      this._delayId = null;
    }
  }

  _delayedAction(delayId, action) {
    return this.client.delayedEventAction(delayId, action);
  }

  async _restartLeave() {
    if (this.state !== "joined" || !this._delayId) return;
    try {
      await this._delayedAction(this._delayId, "restart");
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === "M_NOT_FOUND") {
        // The leave went out: this tab was unreachable (asleep, offline) for longer than the
        // delay. It is still here, so it comes back.
        this._delayId = null;
        await this._rejoin();
      } else {
        console.warn("pushing back the call's delayed leave failed", error);
      }
    }
  }

  /** Our membership was emptied while we are in the call (our own delayed leave, or a sweep
   *  after a late refresh): write it again, with a fresh delayed leave. */
  async _rejoin() {
    if (this.state !== "joined" || this._rejoining) return;
    this._rejoining = true;
    try {
      if (!this._delayId) await this._scheduleLeave();
      if (this.state === "joined") await this._writeMembership();
    } catch (error) {
      if (error instanceof MatrixError && error.errcode === "M_FORBIDDEN") this.leave("forbidden");
      else console.warn("rejoining the call failed", error);
    } finally {
      this._rejoining = false;
    }
  }

  /** Leave this room's call in room state: the delayed leave sent now, or `{}` written. */
  async _writeLeave() {
    clearInterval(this._leaveTimer);
    const delayId = this._delayId;
    this._delayId = null;
    if (delayId) {
      try {
        await this._delayedAction(delayId, "send");
        return;
      } catch (error) {
        // Already sent, or the homeserver cannot be reached: write it ourselves.
      }
    }
    await this.client.putState(this.roomId, CALL_MEMBER, this.key, {});
  }

  /** Another tab of this device took over: our delayed leave must not empty its membership. */
  _cancelLeave() {
    clearInterval(this._leaveTimer);
    const delayId = this._delayId;
    this._delayId = null;
    if (delayId) this._delayedAction(delayId, "cancel").catch(() => {});
  }

  /** This device's memberships in other rooms' calls are emptied (one call at a time). */
  _leaveOtherCalls() {
    const keys = [this.key, `_${this.me.userId}_${this.me.deviceId}`];
    for (const room of this.sync.rooms.values()) {
      if (room.roomId === this.roomId) continue;
      for (const key of keys) {
        const event = room.getState(CALL_MEMBER, key);
        if (!event || Object.keys(event.content ?? {}).length === 0) continue;
        this.client.putState(room.roomId, CALL_MEMBER, key, {}).catch((error) => {
          console.warn("leaving the call in another channel failed", error);
        });
      }
    }
  }

  /** Whether this device has since joined another room's call (in another tab). */
  _movedElsewhere() {
    for (const room of this.sync.rooms.values()) {
      if (room.roomId === this.roomId) continue;
      const content = room.getState(CALL_MEMBER, this.key)?.content ?? {};
      if (content.application === "m.call" && content.membershipID !== this.sessionId && content.created_ts > this.createdTs) {
        return true;
      }
    }
    return false;
  }

  async _refresh() {
    if (this.state !== "joined") return;
    try {
      await this._writeMembership();
    } catch (error) {
      console.warn("call membership refresh failed", error);
    }
  }

  /**
   * Leave the call. `replaced` (another tab of this device joined this room) and `moved` (it
   * joined another room's call) leave the membership to that tab.
   */
  async leave(reason = "left") {
    if (this.state === "left" || this.state === "idle") return;
    const wasJoined = this.state === "joined";
    this.state = "left";
    this._teardown();
    for (const peer of this.peerList) peer.hangup("user_hangup");
    this.peers.clear();
    if (reason === "replaced" || reason === "moved") this._cancelLeave();
    else if (wasJoined) {
      // (While joining, join() takes its membership back itself once the write is done.)
      try {
        await this._writeLeave();
      } catch (error) {
        console.warn("leaving the call's membership failed", error);
      }
    }
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }

  /** On pagehide: a request that outlives the page (fetch keepalive) leaves the call. */
  _leaveBestEffort() {
    if (this.state !== "joined") return;
    // If it is lost, the delayed leave (or the expiry and the bridge's sweep) clears it anyway.
    if (this._delayId) {
      this.client.delayedEventActionOnUnload(this._delayId, "send");
    } else {
      this.client.putStateOnUnload(this.roomId, CALL_MEMBER, this.key, {});
    }
  }

  _teardown() {
    this.transport?.stop();
    clearInterval(this._refreshTimer);
    clearInterval(this._leaveTimer);
    this.sync.removeEventListener("update", this._onUpdate);
    this.sync.removeEventListener("to_device", this._onToDevice);
    window.removeEventListener("pagehide", this._onPageHide);
    this._stopLocalMedia();
    if (activeCall === this) activeCall = null;
  }

  _stopLocalMedia() {
    for (const track of this.micStream?.getTracks() ?? []) track.stop();
    this.screenTrack?.stop();
    this.cameraTrack?.stop();
    this.screenTrack = null;
    this.cameraTrack = null;
  }

  _changed() {
    this.dispatchEvent(new CustomEvent("change"));
  }

  // --- who is in the call ----------------------------------------------------------------------

  /** Match the peers to the memberships in room state: call the new ones, drop the gone ones. */
  _reconcile() {
    if (this.state !== "joined") return;
    const room = this.sync.room(this.roomId);
    if (!room) {
      this.leave("room_left");
      return;
    }
    const own = room.getState(CALL_MEMBER, this.key);
    if (own && own.content?.membershipID !== this.sessionId && own.origin_server_ts > this.createdTs) {
      if (own.content?.application === "m.call") {
        // This device joined this call again in another tab (the same session): yield to it.
        this.leave("replaced");
        return;
      }
      if (this._movedElsewhere()) {
        // Another tab of this device joined another channel's call, and emptied ours.
        this.leave("moved");
        return;
      }
      // Emptied while we are here: our delayed leave went out, or a sweep after a late refresh.
      // Once per emptying: our write shows in a later sync.
      if (this._rejoinedFor !== own.event_id) {
        this._rejoinedFor = own.event_id;
        this._rejoin();
      }
    }
    const notMe = (m) => !(m.userId === this.me.userId && m.deviceId === this.me.deviceId);
    const idOf = (m) => `${m.userId}|${m.deviceId}`;
    const members = callMembers(room).filter(notMe);
    // Nobody on another transport can be reached from this one: listed, never called.
    this.foreign = members.filter((m) => m.focus !== this.focusType);
    this._applyMarks(members);
    if (this.transport) {
      // On the SFU, Janus tells who publishes (janus.js); room state tells who is in the call.
      this._changed();
      return;
    }
    const live = new Set(members.filter((m) => m.focus === "mesh").map(idOf));
    // A connected peer whose refresh is late (a slow sync, a busy tab) stays until its
    // membership is emptied (it left, or the bridge cleared it) or its connection ends.
    const present = callMembers(room, Date.now(), { includeExpired: true }).filter((m) => notMe(m) && m.focus === "mesh");
    const wanted = new Map(present.map((m) => [idOf(m), m]));
    for (const [id, peer] of this.peers) {
      const member = wanted.get(id);
      if (member && !live.has(id) && !peer.connected && peer.membershipSeen) {
        peer.close();
        this.peers.delete(id);
      } else if (!member) {
        // A peer that called us before its membership reached our sync stays while it is new.
        if (peer.membershipSeen || Date.now() - peer.createdAt > INVITE_LIFETIME_MS) {
          peer.close();
          this.peers.delete(id);
        }
      } else if (member.sessionId !== peer.remoteSessionId && peer.membershipSeen) {
        // They left and came back: a fresh call for their new session.
        peer.close();
        this.peers.delete(id);
      } else {
        peer.membershipSeen = true;
        peer.remoteSessionId = member.sessionId;
      }
    }
    for (const [id, list] of [...this.pending]) {
      if (!live.has(id)) {
        if (list.every((e) => Date.now() - e.at >= INVITE_LIFETIME_MS)) this.pending.delete(id);
        continue;
      }
      this.pending.delete(id);
      for (const entry of list) if (Date.now() - entry.at < INVITE_LIFETIME_MS) this._handleToDevice(entry.event);
    }
    for (const [id, member] of wanted) {
      if (this.peers.has(id) || !live.has(id)) continue;
      const peer = new Peer(this, member.userId, member.deviceId, member.sessionId);
      peer.membershipSeen = true;
      this.peers.set(id, peer);
      if (compareParty(this.me, member) < 0) peer.placeCall();
    }
    this._applyMarks(members);
    this._applyVideoEncodings();
    this._changed();
  }

  /** Each peer takes what its device's membership says of its media (mute, deafen, camera). */
  _applyMarks(members) {
    for (const peer of this.peers.values()) {
      peer.applyMarks(members.find((m) => m.userId === peer.userId && m.deviceId === peer.deviceId)?.marks ?? null);
    }
  }

  /** The sending budget of every peer's video for the call's current size (see videoEncoding). */
  get videoEncoding() {
    return videoEncoding(this.peers.size, { screen: Boolean(this.screenTrack) });
  }

  _applyVideoEncodings() {
    for (const peer of this.peerList) peer.applyVideoEncoding();
  }

  // --- signalling ----------------------------------------------------------------------------

  async sendToDevice(type, userId, deviceId, content) {
    await this.client.sendToDevice(type, { [userId]: { [deviceId]: content } });
  }

  _handleToDevice(event) {
    if (this.transport) return; // on the SFU, no mesh signalling
    if (this.state !== "joined" || typeof event?.type !== "string" || !event.type.startsWith("m.call.")) return;
    const content = event.content ?? {};
    if (content.conf_id !== this.roomId) return;
    if (content.dest_session_id && content.dest_session_id !== this.sessionId) return;
    const userId = event.sender;
    const deviceId = content.device_id;
    if (typeof userId !== "string" || typeof deviceId !== "string") return;
    if (userId === this.me.userId && deviceId === this.me.deviceId) return;
    const room = this.sync.room(this.roomId);
    const id = `${userId}|${deviceId}`;
    let peer = this.peers.get(id);
    if (!peer && !callMembers(room).some((m) => m.userId === userId && m.deviceId === deviceId)) {
      // Only devices with a live membership in this room's call may reach us. Their signalling
      // can overtake their membership in our sync: keep it briefly, replayed once it shows.
      const list = (this.pending.get(id) ?? []).filter((e) => Date.now() - e.at < INVITE_LIFETIME_MS);
      if (list.length < 200) list.push({ event, at: Date.now() });
      this.pending.set(id, list);
      return;
    }
    if (event.type === "m.call.invite") {
      if (peer && peer.callId === content.call_id) {
        peer.handle(event.type, content);
        return;
      }
      if (peer && peer.outgoing && !peer.connected && compareParty(this.me, { userId, deviceId }) < 0) {
        // Glare: both placed a call; ours wins, theirs is dropped (they answer ours).
        return;
      }
      if (this.peerList.length >= MAX_PARTICIPANTS && !peer) return;
      peer?.close();
      peer = new Peer(this, userId, deviceId, content.sender_session_id);
      peer.membershipSeen = true;
      this.peers.set(id, peer);
      peer.answerInvite(content);
      this._applyVideoEncodings();
      this._changed();
      return;
    }
    if (!peer || peer.callId !== content.call_id) return;
    peer.handle(event.type, content);
  }

  // --- local media controls --------------------------------------------------------------------

  setMuted(muted) {
    this.muted = Boolean(muted);
    for (const track of this.micStream?.getAudioTracks() ?? []) track.enabled = !this.muted;
    this._marksChanged();
  }

  setDeafened(deafened) {
    this.deafened = Boolean(deafened);
    // Deafened also mutes, as in Discord; undeafening gives the microphone back.
    this.setMuted(this.deafened);
  }

  /** Turn the camera on or off; refused in voice channels and without the `video` permission. */
  async setCamera(on) {
    if (on && !this.canVideo) {
      throw new CallError(
        "no_video",
        this.kind === "voice" ? "Voice channels carry no video." : "You need the video permission to turn on your camera.",
      );
    }
    if (!on) {
      this.cameraTrack?.stop();
      this.cameraTrack = null;
    } else if (!this.cameraTrack) {
      const stream = await navigator.mediaDevices.getUserMedia({ video: media.video, audio: false });
      this.cameraTrack = stream.getVideoTracks()[0] ?? null;
    }
    await Promise.all(this.peerList.map((peer) => peer.updateVideo()));
    await this.transport?.updateVideo();
    this._marksChanged();
  }

  /**
   * Share the screen (video channels). On the mesh it replaces the camera on the same sender; on
   * the SFU it is a second feed in the VideoRoom beside the camera (janus.js). Off returns to
   * the camera alone.
   */
  async setScreenShare(on) {
    if (on && !this.canVideo) {
      throw new CallError("no_video", "Screen sharing is for video channels, with the video permission.");
    }
    if (on && !this.screenTrack) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = stream.getVideoTracks()[0] ?? null;
      if (!track || this.state === "left") {
        track?.stop();
        return;
      }
      this.screenTrack = track;
      // The browser's own "Stop sharing" button ends it too.
      track.addEventListener("ended", () => {
        if (this.screenTrack === track) this.setScreenShare(false);
      });
      try {
        await this.transport?.publishScreen(track);
      } catch (error) {
        track.stop();
        this.screenTrack = null;
        this._changed();
        throw new CallError("screen", `Guilds could not share your screen: ${error.message}`);
      }
    } else if (!on && this.screenTrack) {
      this.screenTrack.stop();
      this.screenTrack = null;
      this.transport?.unpublishScreen();
    }
    await Promise.all(this.peerList.map((peer) => peer.updateVideo()));
    this._marksChanged();
  }

  /** Mute, deafen, camera or screen changed: tell the others, by both carriers. */
  _marksChanged() {
    // The mesh's MSC3077 metadata (to-device, at once) and the membership (room state, any
    // client, both transports).
    this._sendMetadata();
    this._publishMarks();
    this._changed();
  }

  /** Rewrite the membership with the current marks; one write at a time, the last one wins. */
  _publishMarks() {
    if (this.state !== "joined") return;
    if (this._marksWrite) {
      this._marksAgain = true;
      return;
    }
    this._marksWrite = this._writeMembership()
      .catch((error) => console.warn("publishing the call's marks failed", error))
      .finally(() => {
        this._marksWrite = null;
        if (this._marksAgain) {
          this._marksAgain = false;
          this._publishMarks();
        }
      });
  }

  /** What the membership of this device of the call says of its media, or null. */
  marksOf(userId, deviceId) {
    const member = callMembers(this.sync.room(this.roomId), Date.now(), { includeExpired: true }).find(
      (m) => m.userId === userId && m.deviceId === deviceId,
    );
    return member?.marks ?? null;
  }

  _metadata() {
    return {
      [this.streamId]: {
        purpose: this.screenTrack ? "m.screenshare" : "m.usermedia",
        audio_muted: this.muted,
        video_muted: !this.localVideoTrack,
      },
    };
  }

  get streamId() {
    return this.micStream?.id ?? "none";
  }

  _sendMetadata() {
    for (const peer of this.peerList) peer.sendMetadata();
  }

  /** Per peer: inbound audio bytes and video frames, and the connection state (tests, UI). */
  async stats() {
    const result = [];
    for (const peer of this.peerList) result.push(await peer.stats());
    return result;
  }
}

/** One RTCPeerConnection with one other device. */
class Peer {
  constructor(call, userId, deviceId, remoteSessionId) {
    this.call = call;
    this.userId = userId;
    this.deviceId = deviceId;
    this.remoteSessionId = remoteSessionId ?? null;
    this.partyId = call.me.deviceId;
    this.callId = null;
    this.seq = 0;
    this.outgoing = false;
    this.connected = false;
    this.membershipSeen = false;
    this.createdAt = Date.now();
    this.attempts = 0;
    this.pc = null;
    this.stream = new MediaStream();
    this.remoteMuted = { audio: false, video: true };
    this.deafened = false;
    // A mesh peer's screen share takes its camera's place (the SFU's is a feed of its own).
    this.screen = false;
    this.pendingCandidates = [];
    this.outCandidates = [];
    this._candidateTimer = null;
    this._answerTimer = null;
    this.makingOffer = false;
    this.described = false;
    this.closed = false;
    this._encoding = Promise.resolve();
  }

  get state() {
    if (!this.pc) return "new";
    return this.pc.connectionState;
  }

  get polite() {
    // The device that sorts later yields when both offer at once.
    return compareParty(this.call.me, this) > 0;
  }

  async _newConnection() {
    const config = await rtcConfiguration(this.call.client);
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    this.stream = new MediaStream();
    pc.addEventListener("icecandidate", (event) => this._queueCandidate(event.candidate));
    pc.addEventListener("track", (event) => {
      if (this.call.kind === "voice" && event.track.kind === "video") {
        event.transceiver.direction = "inactive";
        return;
      }
      this.stream.addTrack(event.track);
      event.track.addEventListener("ended", () => this.stream.removeTrack(event.track));
      this.call._changed();
    });
    pc.addEventListener("connectionstatechange", () => {
      this.connected = pc.connectionState === "connected";
      if (pc.connectionState === "failed" && !this.closed && this.outgoing) this._retry();
      this.call._changed();
    });
    pc.addEventListener("negotiationneeded", () => this._renegotiate());
    return pc;
  }

  /** Add our tracks: audio always; video only in video channels (camera or screen, or none). */
  _addLocalTracks() {
    const pc = this.pc;
    const audio = this.call.micStream?.getAudioTracks()[0] ?? null;
    const stream = this.call.micStream ?? new MediaStream();
    if (audio) pc.addTransceiver(audio, { direction: "sendrecv", streams: [stream] });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    if (this.call.kind === "video") {
      const video = this.call.localVideoTrack;
      if (video) pc.addTransceiver(video, { direction: "sendrecv", streams: [stream] });
      else pc.addTransceiver("video", { direction: "recvonly" });
    }
  }

  _base() {
    return {
      call_id: this.callId,
      party_id: this.partyId,
      version: VERSION,
      conf_id: this.call.roomId,
      device_id: this.call.me.deviceId,
      sender_session_id: this.call.sessionId,
      dest_session_id: this.remoteSessionId ?? undefined,
      seq: this.seq++,
    };
  }

  _send(type, extra) {
    if (this.closed && type !== "m.call.hangup") return Promise.resolve();
    const content = { ...this._base(), ...extra };
    if (content.dest_session_id === undefined) delete content.dest_session_id;
    return this.call.sendToDevice(type, this.userId, this.deviceId, content).catch((error) => {
      console.warn(`${type} to ${this.userId} failed`, error);
    });
  }

  async placeCall() {
    this.outgoing = true;
    this.attempts += 1;
    this.callId = randomId();
    this.seq = 0;
    this.described = false;
    this.outCandidates = [];
    const pc = await this._newConnection();
    this._addLocalTracks();
    this.makingOffer = true;
    try {
      await pc.setLocalDescription(await pc.createOffer());
    } finally {
      this.makingOffer = false;
    }
    if (this.closed) return;
    this.applyVideoEncoding();
    await this._send("m.call.invite", {
      lifetime: INVITE_LIFETIME_MS,
      offer: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
      invitee: this.userId,
      sdp_stream_metadata: this.call._metadata(),
    });
    this.described = true;
    this._flushCandidates();
    clearTimeout(this._answerTimer);
    this._answerTimer = setTimeout(() => {
      if (!this.closed && pc.signalingState === "have-local-offer") this._retry();
    }, INVITE_LIFETIME_MS);
  }

  _retry() {
    if (this.closed || this.attempts >= MAX_ATTEMPTS) return;
    this._send("m.call.hangup", { reason: "ice_failed" });
    this.pc?.close();
    this.pendingCandidates = [];
    setTimeout(() => {
      if (!this.closed) this.placeCall();
    }, 1000);
  }

  async answerInvite(content) {
    this.outgoing = false;
    this.callId = content.call_id;
    this.remoteSessionId = content.sender_session_id ?? this.remoteSessionId;
    this.seq = 0;
    this._readMetadata(content.sdp_stream_metadata);
    const pc = await this._newConnection();
    const offer = content.offer;
    if (!offer || offer.type !== "offer" || typeof offer.sdp !== "string") return;
    await pc.setRemoteDescription(offer);
    this._attachToOfferedTransceivers();
    await this._drainCandidates();
    await pc.setLocalDescription(await pc.createAnswer());
    if (this.closed) return;
    this.applyVideoEncoding();
    await this._send("m.call.answer", {
      answer: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
      sdp_stream_metadata: this.call._metadata(),
    });
    this.described = true;
    this._flushCandidates();
  }

  /** The answerer sends on the transceivers the offer made: audio on the first audio one, video
   *  (in video channels only) on the first video one. */
  _attachToOfferedTransceivers() {
    const stream = this.call.micStream ?? new MediaStream();
    let audioDone = false;
    let videoDone = false;
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      if (kind === "audio" && !audioDone) {
        audioDone = true;
        const track = this.call.micStream?.getAudioTracks()[0] ?? null;
        if (track) {
          transceiver.sender.replaceTrack(track);
          transceiver.sender.setStreams?.(stream);
          transceiver.direction = "sendrecv";
        } else transceiver.direction = "recvonly";
      } else if (kind === "video" && !videoDone && this.call.kind === "video") {
        videoDone = true;
        const track = this.call.localVideoTrack;
        if (track) {
          transceiver.sender.replaceTrack(track);
          transceiver.sender.setStreams?.(stream);
        }
        transceiver.direction = track ? "sendrecv" : "recvonly";
      } else {
        transceiver.direction = "inactive";
      }
    }
  }

  /** Camera or screen changed: swap the video track, renegotiating only if the direction must. */
  async updateVideo() {
    if (!this.pc || this.call.kind !== "video" || this.pc.signalingState === "closed") return;
    const track = this.call.localVideoTrack;
    const transceiver = this.pc.getTransceivers().find((t) => t.receiver.track.kind === "video" && t.direction !== "inactive");
    if (!transceiver) {
      if (!track) return;
      // No video line yet (a foreign client offered audio only): add one; negotiationneeded fires.
      this.pc.addTransceiver(track, { direction: "sendrecv", streams: [this.call.micStream ?? new MediaStream()] });
      return;
    }
    await transceiver.sender.replaceTrack(track);
    if (track) transceiver.sender.setStreams?.(this.call.micStream ?? new MediaStream());
    this.applyVideoEncoding();
    const wanted = track ? "sendrecv" : "recvonly";
    // Changing the direction fires negotiationneeded: an m.call.negotiate round follows.
    if (transceiver.direction !== wanted) transceiver.direction = wanted;
  }

  /** Give our video sender the call's current budget (a no-op until it has an encoding). */
  applyVideoEncoding() {
    // One at a time: setParameters refuses parameters read before another call changed them.
    this._encoding = this._encoding.then(() => this._setVideoEncoding());
    return this._encoding;
  }

  async _setVideoEncoding() {
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === "video");
    if (!sender || this.pc.signalingState === "closed") return;
    const wanted = this.call.videoEncoding;
    try {
      const params = sender.getParameters();
      const current = params.encodings?.[0];
      if (!current) return; // not negotiated yet: applied again once it is
      if (Object.entries(wanted).every(([key, value]) => current[key] === value)) return;
      params.encodings[0] = { ...current, ...wanted };
      await sender.setParameters(params);
    } catch (error) {
      console.warn("setting the video budget failed", error);
    }
  }

  async _renegotiate() {
    const pc = this.pc;
    // The first offer goes as m.call.invite; only later changes are negotiated.
    if (!pc || this.closed || !this.callId || !pc.remoteDescription || pc.signalingState !== "stable") return;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      this.applyVideoEncoding();
      await this._send("m.call.negotiate", {
        description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
        lifetime: INVITE_LIFETIME_MS,
        sdp_stream_metadata: this.call._metadata(),
      });
    } catch (error) {
      console.warn("renegotiation failed", error);
    } finally {
      this.makingOffer = false;
    }
  }

  async handle(type, content) {
    const pc = this.pc;
    try {
      if (type === "m.call.answer") {
        if (!pc || pc.signalingState !== "have-local-offer") return;
        clearTimeout(this._answerTimer);
        this._readMetadata(content.sdp_stream_metadata);
        await pc.setRemoteDescription(content.answer);
        await this._drainCandidates();
        // MSC2746: the caller confirms which answer it took.
        this._send("m.call.select_answer", { selected_party_id: content.party_id });
      } else if (type === "m.call.candidates") {
        for (const candidate of content.candidates ?? []) {
          if (!candidate || typeof candidate !== "object") continue;
          if (!pc?.remoteDescription) this.pendingCandidates.push(candidate);
          else await this._addCandidate(candidate);
        }
      } else if (type === "m.call.negotiate") {
        const description = content.description;
        if (!pc || !description || typeof description.sdp !== "string") return;
        this._readMetadata(content.sdp_stream_metadata);
        const collision = description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
        if (collision && !this.polite) return;
        await pc.setRemoteDescription(description);
        if (description.type === "offer") {
          if (this.call.kind === "voice") {
            for (const t of pc.getTransceivers()) if (t.receiver.track.kind === "video") t.direction = "inactive";
          }
          await pc.setLocalDescription();
          this.applyVideoEncoding();
          await this._send("m.call.negotiate", {
            description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
            sdp_stream_metadata: this.call._metadata(),
          });
        }
      } else if (type === "m.call.sdp_stream_metadata_changed") {
        this._readMetadata(content.sdp_stream_metadata);
        this.call._changed();
      } else if (type === "m.call.hangup" || type === "m.call.reject") {
        this.close();
        this.call.peers.delete(`${this.userId}|${this.deviceId}`);
        this.call._applyVideoEncodings();
        this.call._changed();
      }
    } catch (error) {
      console.warn(`handling ${type} from ${this.userId} failed`, error);
    }
  }

  _readMetadata(metadata) {
    if (!metadata || typeof metadata !== "object") return;
    const entries = Object.values(metadata).filter((m) => m && typeof m === "object");
    const main = entries.find((m) => m.purpose === "m.usermedia" || m.purpose === "m.screenshare") ?? entries[0];
    if (!main) return;
    this.remoteMuted = { audio: Boolean(main.audio_muted), video: Boolean(main.video_muted) };
    this.remotePurpose = main.purpose;
  }

  /** On the mesh, mute and camera come from MSC3077 metadata, first-hand and at once; the
   *  membership adds what the metadata cannot say: deafened. */
  applyMarks(marks) {
    this.deafened = Boolean(marks?.deafened);
  }

  sendMetadata() {
    if (!this.callId || this.closed) return;
    this._send("m.call.sdp_stream_metadata_changed", { sdp_stream_metadata: this.call._metadata() });
  }

  async _addCandidate(candidate) {
    try {
      if (candidate.candidate === "") await this.pc.addIceCandidate();
      else await this.pc.addIceCandidate(candidate);
    } catch (error) {
      console.warn("a remote ICE candidate was refused", error);
    }
  }

  async _drainCandidates() {
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of queued) await this._addCandidate(candidate);
  }

  _queueCandidate(candidate) {
    // null marks the end of gathering: sent as the spec's empty candidate.
    this.outCandidates.push(
      candidate
        ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex }
        : { candidate: "" },
    );
    if (!this._candidateTimer) this._candidateTimer = setTimeout(() => this._flushCandidates(), 100);
  }

  _flushCandidates() {
    clearTimeout(this._candidateTimer);
    this._candidateTimer = null;
    // Candidates wait until the invite or answer carrying our description has gone first.
    if (!this.callId || !this.described || this.outCandidates.length === 0) return;
    const candidates = this.outCandidates;
    this.outCandidates = [];
    this._send("m.call.candidates", { candidates });
  }

  hangup(reason) {
    if (this.callId && !this.closed) this._send("m.call.hangup", { reason });
    this.close();
  }

  close() {
    this.closed = true;
    clearTimeout(this._answerTimer);
    clearTimeout(this._candidateTimer);
    try {
      this.pc?.close();
    } catch {
      // already closed
    }
  }

  stats() {
    return peerStats(this);
  }
}

/**
 * A speaking detector; calls `onChange(id, speaking)` on edges, and keeps each one's last level
 * (`level(id)`, for picking the active speaker). Two sources, polled together:
 *
 * - a local stream (our microphone): an analyser on one AudioContext for the page. Each poll
 *   reads every sample since the previous one (the analyser keeps the last ~340 ms), so a short
 *   sound between two polls is not missed, and a late timer on a busy machine only delays the
 *   indicator;
 * - a received audio track (a peer, on the mesh or through the SFU): the level the browser
 *   measured of what it received and decoded, from the receiver's `inbound-rtp` statistics, as
 *   the RMS over the poll of `totalAudioEnergy` / `totalSamplesDuration`. Energy adds up every
 *   sample, so a short sound is not missed either, and no WebAudio graph runs per speaker (a
 *   call of 25).
 */
export class SpeakingMonitor {
  constructor(onChange) {
    this.onChange = onChange;
    // id → {speaking, loudAt, level, and either {source, analyser, data, stream, trackCount}
    // or {receiver, energy, duration, busy}}
    this.entries = new Map();
    this.context = null;
    this.timer = null;
    this.polledAt = 0;
  }

  watch(id, stream) {
    const current = this.entries.get(id);
    if (current?.stream === stream && current.trackCount === stream.getAudioTracks().length) return;
    this.unwatch(id);
    if (!stream || stream.getAudioTracks().length === 0) return;
    try {
      this.context ??= new AudioContext();
      if (this.context.state === "suspended") this.context.resume().catch(() => {});
      const source = this.context.createMediaStreamSource(stream);
      const analyser = this.context.createAnalyser();
      analyser.fftSize = 16384;
      source.connect(analyser);
      this.entries.set(id, {
        source,
        analyser,
        data: new Float32Array(analyser.fftSize),
        speaking: false,
        loudAt: -Infinity,
        level: 0,
        stream,
        trackCount: stream.getAudioTracks().length,
      });
    } catch (error) {
      console.warn("no speaking indicator", error);
      return;
    }
    this._start();
  }

  /** Watch what an RTCRtpReceiver receives (null: stop watching). */
  watchReceiver(id, receiver) {
    const current = this.entries.get(id);
    if (current?.receiver === receiver && receiver) return;
    this.unwatch(id);
    if (!receiver) return;
    this.entries.set(id, { receiver, energy: null, duration: null, busy: false, speaking: false, loudAt: -Infinity, level: 0 });
    this._start();
  }

  /** The last level measured of `id` (0 to 1), 0 when not watched. */
  level(id) {
    return this.entries.get(id)?.level ?? 0;
  }

  _start() {
    if (this.timer === null) {
      this.polledAt = performance.now();
      this.timer = setInterval(() => this._poll(), SPEAKING_POLL_MS);
    }
  }

  unwatch(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.source?.disconnect();
    this.entries.delete(id);
    if (entry.speaking) this.onChange(id, false);
  }

  _poll() {
    const now = performance.now();
    const elapsed = (now - this.polledAt) / 1000;
    this.polledAt = now;
    for (const [id, entry] of this.entries) {
      if (entry.receiver) {
        this._pollReceiver(id, entry);
        continue;
      }
      const count = Math.ceil(elapsed * this.context.sampleRate);
      const block = Math.round(SPEAKING_BLOCK_S * this.context.sampleRate);
      entry.analyser.getFloatTimeDomainData(entry.data);
      this._judge(id, entry, loudestBlock(entry.data, count, block), now);
    }
  }

  async _pollReceiver(id, entry) {
    if (entry.busy) return;
    entry.busy = true;
    try {
      let energy = 0;
      let duration = 0;
      (await entry.receiver.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") {
          energy += s.totalAudioEnergy ?? 0;
          duration += s.totalSamplesDuration ?? 0;
        }
      });
      if (this.entries.get(id) !== entry) return;
      const level = entry.duration === null ? 0 : receivedLevel(energy - entry.energy, duration - entry.duration);
      entry.energy = energy;
      entry.duration = duration;
      this._judge(id, entry, level, performance.now());
    } catch {
      // The connection closed under us: its peer is about to go.
    } finally {
      entry.busy = false;
    }
  }

  _judge(id, entry, level, now) {
    entry.level = level;
    if (level > SPEAKING_LEVEL) entry.loudAt = now;
    const speaking = now - entry.loudAt < SPEAKING_HOLD_MS;
    if (speaking !== entry.speaking) {
      entry.speaking = speaking;
      this.onChange(id, speaking);
    }
  }

  stop() {
    for (const id of [...this.entries.keys()]) this.unwatch(id);
    clearInterval(this.timer);
    this.timer = null;
    this.context?.close().catch(() => {});
    this.context = null;
  }
}

/**
 * The level (0 to 1) of received audio over an interval, from the growth of its inbound-rtp
 * `totalAudioEnergy` and `totalSamplesDuration` (energy is the sum of level² × duration).
 */
export function receivedLevel(energyGained, durationGained) {
  if (!(durationGained > 0) || !(energyGained > 0)) return 0;
  return Math.sqrt(energyGained / durationGained);
}

/**
 * The RMS level of the loudest block of `blockSize` samples among the newest `count` samples of
 * `data` (oldest first, as an analyser gives them).
 */
export function loudestBlock(data, count, blockSize) {
  const start = Math.max(0, data.length - count);
  let loudest = 0;
  for (let from = start; from < data.length; from += blockSize) {
    const to = Math.min(data.length, from + blockSize);
    let sum = 0;
    for (let i = from; i < to; i++) sum += data[i] * data[i];
    loudest = Math.max(loudest, Math.sqrt(sum / (to - from)));
  }
  return loudest;
}
