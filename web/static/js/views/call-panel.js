// Voice and video channels in the shell: who is in each channel's call (sidebar, live from room
// state), joining by clicking the channel, and the docked call panel (tiles, mute, deafen,
// camera, screen share, leave, each peer's connection state) that stays while the person reads
// and writes in other channels.

import { h } from "../dom.js";
import { icon, setIcon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { CallError, GroupCall, MAX_PARTICIPANTS, SpeakingMonitor, callMembers } from "../calls/group.js";
import { avatar } from "../avatar.js";
import { fitTiles } from "./call-layout.js";

const CALL_KINDS = new Set(["voice", "video"]);
// Memberships expire without an event: the sidebar is looked at again this often.
const EXPIRY_RECHECK_MS = 5_000;
const STATE_LABELS = {
  new: "Connecting…",
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Reconnecting…",
  failed: "Connection failed",
  closed: "Disconnected",
};
// A member whose transport Guilds cannot join (Element Call's SFU): present, never connecting.
const FOREIGN_LABEL = "In the call from another app";

function has(server, permission) {
  return Boolean(server?.me?.permissions?.includes(permission));
}

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {{userId: string, deviceId: string}} options.session
 * @param {() => void} options.onChange  the sidebar should be drawn again
 * @param {import("../guilds-api.js").GuildsApi | null} [options.api]  for SFU credentials
 */
export function createCallUi({ client, sync, session, onChange, api = null }) {
  /** @type {GroupCall | null} */
  let call = null;
  let callChannel = null; // {server_id, channel_id, name, kind, serverName}
  let errorText = "";
  const speaking = new Set(); // user ids speaking now (in our call)
  const tiles = new Map(); // peer id | "self" → {el, video, audio, state, ...}
  const joinedRooms = new Set();
  // The browser refused to play the call's sound before the person interacted with the page.
  let soundBlocked = false;

  const monitor = new SpeakingMonitor((id, on) => {
    const userId = id === "self" ? session.userId : (call?.peers.get(id)?.userId ?? null);
    if (!userId) return;
    if (on) speaking.add(userId);
    else speaking.delete(userId);
    showSpeaking(userId);
  });

  // --- the docked panel -------------------------------------------------------------------------
  const errorLine = h("p", { class: "form-error call-error", role: "alert", "data-testid": "call-error" });
  const title = h("span", { class: "call-title", "data-testid": "call-title" });
  const status = h("span", { class: "call-status muted", "data-testid": "call-status" });
  const tileGrid = h("div", { class: "call-tiles", "data-testid": "call-tiles" });
  fitTiles(tileGrid);
  let shownChannel = null; // the channel open beside the panel (the call's own: the panel fills it)
  const muteButton = control("call-mute", "mic", "Mute", () => call?.setMuted(!call.muted));
  const deafenButton = control("call-deafen", "headphones", "Deafen", () => {
    if (!call) return;
    call.setDeafened(!call.deafened);
    applyDeafen();
  });
  const cameraButton = control("call-camera", "video-off", "Turn camera on", () => act(() => call?.setCamera(!call.cameraTrack)));
  const screenButton = control("call-screen", "monitor-up", "Share your screen", () => act(() => call?.setScreenShare(!call.screenTrack)));
  const leaveButton = control("call-leave", "phone-off", "Leave the call", () => leave());
  leaveButton.classList.add("danger");
  const dismiss = h("button", {
    type: "button",
    class: "icon-button",
    "data-testid": "call-error-dismiss",
    "aria-label": "Dismiss",
    onclick: () => setError(""),
  }, icon("x"));
  const errorRow = h("div", { class: "call-error-row" }, errorLine, dismiss);
  const soundButton = h("button", {
    type: "button",
    class: "button call-sound-blocked",
    "data-testid": "call-sound-blocked",
    text: "Your browser is holding the call's sound back: click to hear it",
    onclick: () => unblockSound(),
  });
  // Any interaction allows playback again, not only this button.
  const onInteraction = () => unblockSound();
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, onInteraction, true);
  const header = h("div", { class: "call-header" }, h("div", { class: "call-heading" }, title, status));
  const controls = h("div", { class: "call-controls" }, muteButton, deafenButton, cameraButton, screenButton, leaveButton);
  const body = h("div", { class: "call-body" }, header, tileGrid, controls);
  const panel = h("section", { class: "call-panel", "data-testid": "call-panel", "aria-label": "Call" }, errorRow, soundButton, body);

  function control(testid, name, label, onclick) {
    return h("button", {
      type: "button",
      class: "call-control",
      "data-testid": testid,
      title: label,
      "aria-label": label,
      "aria-pressed": "false",
      onclick,
    }, icon(name));
  }

  async function act(action) {
    try {
      await action();
    } catch (error) {
      setError(error instanceof CallError ? error.message : describeError(error));
    }
  }

  function setError(text) {
    errorText = text;
    render();
  }

  function render() {
    errorLine.textContent = errorText;
    errorRow.hidden = !errorText;
    body.hidden = !call;
    panel.hidden = !call && !errorText;
    soundButton.hidden = !call || !soundBlocked;
    if (!call) return;
    title.textContent = `${callChannel.kind === "video" ? "Video" : "Voice"} · ${callChannel.name}`;
    // People, not devices, and oneself among them: two people in a call are "2 in the call".
    const here = new Set([session.userId, ...call.peerList.filter((p) => p.state === "connected").map((p) => p.userId)]);
    const connecting = new Set(call.peerList.map((p) => p.userId).filter((u) => !here.has(u)));
    const elsewhere = call.foreign.length ? ` · ${call.foreign.length} in another app` : "";
    status.textContent =
      (call.peerList.length === 0 ? "Only you are here" : `${here.size} in the call`) +
      (connecting.size ? ` · ${connecting.size} connecting` : "") +
      elsewhere +
      (call.transport?.problem ? ` · ${call.transport.problem}` : "");
    panel.classList.toggle("stage", shownChannel === call.roomId);
    press(muteButton, call.muted, call.muted ? "Unmute" : "Mute", call.muted ? "mic-off" : "mic");
    press(deafenButton, call.deafened, call.deafened ? "Undeafen" : "Deafen", call.deafened ? "headphone-off" : "headphones");
    cameraButton.hidden = callChannel.kind !== "video";
    screenButton.hidden = callChannel.kind !== "video";
    cameraButton.disabled = !call.canVideo;
    screenButton.disabled = !call.canVideo || !navigator.mediaDevices?.getDisplayMedia;
    press(cameraButton, Boolean(call.cameraTrack), call.cameraTrack ? "Turn camera off" : "Turn camera on", call.cameraTrack ? "video" : "video-off");
    press(screenButton, Boolean(call.screenTrack), call.screenTrack ? "Stop sharing" : "Share your screen");
    if (!call.canVideo && callChannel.kind === "video") cameraButton.title = "You need the video permission";
    renderTiles();
  }

  function press(button, on, label, iconName = null) {
    if (iconName) setIcon(button, iconName);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.classList.toggle("on", on);
    button.title = label;
    button.setAttribute("aria-label", label);
  }

  function avatarOf(userId) {
    return call ? (sync.room(call.roomId)?.avatarOf(userId) ?? null) : null;
  }

  function nameOf(userId) {
    const room = call ? sync.room(call.roomId) : null;
    return room ? room.displayName(userId) : userId.replace(/^@/, "").split(":")[0];
  }

  function tileFor(id, userId) {
    let tile = tiles.get(id);
    if (tile) return tile;
    const video = h("video", { class: "call-video", autoplay: true, playsinline: true, "data-testid": "call-video" });
    video.muted = true; // sound plays through the tile's <audio>, which deafen mutes
    const audio = id === "self" ? null : h("audio", { autoplay: true, "data-testid": "call-audio" });
    const face = avatar(client, { mxc: avatarOf(userId), name: nameOf(userId), id: userId, size: 48, className: "call-face avatar" });
    const label = h("span", { class: "call-name", "data-testid": "call-tile-name", text: nameOf(userId) });
    const state = h("span", { class: "call-peer-state", "data-testid": "peer-state" });
    const mic = h("span", { class: "call-muted", "data-testid": "tile-muted", title: "Muted" }, icon("mic-off", { size: 16 }));
    const el = h(
      "div",
      { class: "call-tile", "data-testid": "call-tile", "data-user-id": userId, "data-peer": id },
      video,
      face,
      h("div", { class: "call-tile-footer" }, label, mic, state),
      audio,
    );
    tile = { el, video, audio, face, label, state, mic, userId, stream: null };
    tiles.set(id, tile);
    return tile;
  }

  function renderTiles() {
    const foreignIds = call.foreign.map((m) => `foreign|${m.userId}|${m.deviceId}`);
    const wanted = new Set(["self", ...call.peers.keys(), ...foreignIds]);
    for (const [id, tile] of tiles) {
      if (!wanted.has(id)) {
        tile.el.remove();
        if (tile.video) tile.video.srcObject = null;
        if (tile.audio) tile.audio.srcObject = null;
        monitor.unwatch(id);
        tiles.delete(id);
      }
    }
    const self = tileFor("self", session.userId);
    const localVideo = call.localVideoTrack;
    attach(self.video, localVideo ? [localVideo] : []);
    self.el.classList.toggle("has-video", Boolean(localVideo));
    self.el.classList.add("self");
    self.mic.hidden = !call.muted;
    self.state.textContent = "You";
    if (call.micStream) monitor.watch("self", call.micStream);
    const nodes = [self.el];
    for (const [id, peer] of call.peers) {
      const tile = tileFor(id, peer.userId);
      attach(tile.video, peer.stream.getVideoTracks());
      if (tile.audio) attach(tile.audio, peer.stream.getAudioTracks());
      const hasVideo = peer.stream.getVideoTracks().length > 0 && !peer.remoteMuted.video;
      tile.el.classList.toggle("has-video", hasVideo && callChannel.kind === "video");
      tile.mic.hidden = !peer.remoteMuted.audio;
      tile.state.textContent = STATE_LABELS[peer.state] ?? peer.state;
      tile.el.dataset.state = peer.state;
      tile.label.textContent = nameOf(peer.userId);
      monitor.watch(id, peer.stream);
      nodes.push(tile.el);
    }
    call.foreign.forEach((member, i) => {
      // No media reaches Guilds from them: a face and the app note, no "Connecting…".
      const tile = tileFor(foreignIds[i], member.userId);
      tile.mic.hidden = true;
      tile.state.textContent = FOREIGN_LABEL;
      tile.el.dataset.state = "foreign";
      tile.label.textContent = nameOf(member.userId);
      nodes.push(tile.el);
    });
    // Re-append in order only when it changed, so playing videos are not disturbed.
    const current = [...tileGrid.children];
    if (current.length !== nodes.length || current.some((node, i) => node !== nodes[i])) tileGrid.replaceChildren(...nodes);
    applyDeafen();
    for (const userId of speaking) showSpeaking(userId);
  }

  /**
   * Point a media element at these tracks, with a fresh MediaStream whenever they change, and
   * play it. Chromium never starts an element whose MediaStream had no track of its kind when it
   * was assigned: a track added to that stream later stays silent (paused, readyState 0, and
   * play() never settles). That is how a caller, whose tile appears before the remote tracks
   * arrive, heard nobody.
   */
  function attach(element, tracks) {
    const current = element.srcObject instanceof MediaStream ? element.srcObject.getTracks() : [];
    if (current.length === tracks.length && tracks.every((track) => current.includes(track))) return;
    element.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) play(element);
  }

  function play(element) {
    element.play().catch((error) => {
      // Blocked until the person interacts with the page (autoplay policy): ask, retry then.
      if (error?.name !== "NotAllowedError" || !call) return;
      soundBlocked = true;
      render();
    });
  }

  function unblockSound() {
    if (!soundBlocked) return;
    soundBlocked = false;
    for (const tile of tiles.values()) if (tile.audio?.srcObject) play(tile.audio);
    render();
  }

  function applyDeafen() {
    for (const tile of tiles.values()) if (tile.audio) tile.audio.muted = Boolean(call?.deafened);
  }

  function showSpeaking(userId) {
    const on = speaking.has(userId);
    for (const el of document.querySelectorAll('[data-testid="call-participant"], [data-testid="call-tile"]')) {
      if (el.getAttribute("data-user-id") === userId) el.classList.toggle("speaking", on);
    }
  }

  // --- joining and leaving --------------------------------------------------------------------

  /** Join the call of a voice or video channel (leaving the current one first). */
  async function join(server, channel) {
    if (!CALL_KINDS.has(channel.kind)) return;
    if (call && call.roomId === channel.channel_id) return;
    setError("");
    if (!has(server, "connect")) {
      setError(`You need the connect permission to join the call in ${channel.name}.`);
      return;
    }
    if (call) await leave();
    if (!sync.room(channel.channel_id)) {
      try {
        await client.joinRoom(channel.channel_id);
        await waitForRoom(channel.channel_id);
      } catch (error) {
        setError(`Could not join ${channel.name}: ${describeError(error)}`);
        return;
      }
    }
    const next = new GroupCall({
      client,
      sync,
      session,
      roomId: channel.channel_id,
      kind: channel.kind,
      canVideo: has(server, "video"),
      // Channel calls go through the SFU when the bridge has one (docs/CALLS.md).
      api,
      serverId: server.server_id,
    });
    call = next;
    callChannel = { server_id: server.server_id, channel_id: channel.channel_id, name: channel.name, kind: channel.kind };
    // Peer states show in the panel; the sidebar follows room state (redrawn on sync updates).
    next.addEventListener("change", () => {
      if (call === next) render();
    });
    next.addEventListener("ended", () => {
      if (call === next) {
        call = null;
        callChannel = null;
        clearTiles();
        render();
        onChange();
      }
    });
    render();
    try {
      await next.join();
    } catch (error) {
      if (call === next) {
        call = null;
        callChannel = null;
      }
      clearTiles();
      setError(
        error instanceof CallError && error.code === "full"
          ? `${channel.name} is full: a call holds ${MAX_PARTICIPANTS} people.`
          : error instanceof CallError
            ? error.message
            : `Could not join the call in ${channel.name}: ${describeError(error)}`,
      );
    }
    onChange();
  }

  function waitForRoom(roomId) {
    if (sync.room(roomId)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sync.removeEventListener("update", check);
        reject(new Error("the channel did not arrive in time"));
      }, 20_000);
      function check() {
        if (!sync.room(roomId)) return;
        clearTimeout(timer);
        sync.removeEventListener("update", check);
        resolve();
      }
      sync.addEventListener("update", check);
    });
  }

  function clearTiles() {
    for (const [id, tile] of tiles) {
      tile.video.srcObject = null;
      if (tile.audio) tile.audio.srcObject = null;
      monitor.unwatch(id);
    }
    tiles.clear();
    tileGrid.replaceChildren();
    speaking.clear();
    soundBlocked = false;
  }

  async function leave() {
    const current = call;
    if (!current) return;
    await current.leave();
  }

  // --- the sidebar ----------------------------------------------------------------------------

  /** Join (as room members, not into the call) the voice and video channels of a server, so
   *  their call membership state reaches this client and the sidebar can list who is in. */
  function watchServer(server) {
    for (const channel of server?.channels ?? []) {
      if (!CALL_KINDS.has(channel.kind) || sync.room(channel.channel_id) || joinedRooms.has(channel.channel_id)) continue;
      joinedRooms.add(channel.channel_id);
      client.joinRoom(channel.channel_id).catch((error) => {
        console.warn(`could not follow the call in ${channel.name}`, error);
      });
    }
  }

  /** The people in a voice or video channel's call, for under its sidebar entry (or null). */
  function participants(channel) {
    if (!CALL_KINDS.has(channel.kind)) return null;
    const room = sync.room(channel.channel_id);
    let members = callMembers(room);
    if (call && call.roomId === channel.channel_id && call.state === "joined") {
      // In this call we know better than a late refresh: we and our connected peers are here.
      const here = (m) =>
        (m.userId === session.userId && m.deviceId === session.deviceId) ||
        call.peers.get(`${m.userId}|${m.deviceId}`)?.connected;
      const live = new Set(members.map((m) => m.key));
      members = callMembers(room, Date.now(), { includeExpired: true }).filter((m) => live.has(m.key) || here(m));
    }
    if (members.length === 0) return null;
    const seen = new Set();
    const items = [];
    for (const member of members) {
      if (seen.has(member.userId)) continue;
      seen.add(member.userId);
      const name = room.displayName(member.userId);
      const foreign = members.filter((m) => m.userId === member.userId).every((m) => m.foreign);
      items.push(
        h(
          "li",
          {
            class: `call-participant${speaking.has(member.userId) && call?.roomId === channel.channel_id ? " speaking" : ""}`,
            "data-testid": "call-participant",
            "data-user-id": member.userId,
            "data-foreign": foreign ? "true" : "false",
            title: foreign ? `${member.userId} · ${FOREIGN_LABEL}` : member.userId,
          },
          avatar(client, { mxc: room.avatarOf(member.userId), name, id: member.userId, size: 22, className: "call-participant-avatar avatar" }),
          h("span", { class: "call-participant-name", text: name }),
          foreign ? h("span", { class: "call-participant-app muted", "data-testid": "call-participant-app", text: "other app" }) : null,
        ),
      );
    }
    return h("ul", { class: "call-participants", "data-testid": "call-participants", "data-channel-id": channel.channel_id }, ...items);
  }

  // Who is in which call, as last drawn: an expiry (which comes with no event) redraws the sidebar.
  let lastSignature = "";
  function signature() {
    const parts = [];
    for (const room of sync.rooms.values()) {
      const members = callMembers(room);
      if (members.length) parts.push(`${room.roomId}:${members.map((m) => m.key).join(",")}`);
    }
    return parts.join(";");
  }
  const recheck = setInterval(() => {
    const now = signature();
    if (now !== lastSignature) {
      lastSignature = now;
      onChange();
    }
  }, EXPIRY_RECHECK_MS);

  async function destroy() {
    clearInterval(recheck);
    for (const type of ["pointerdown", "keydown"]) document.removeEventListener(type, onInteraction, true);
    await leave().catch(() => {});
    monitor.stop();
  }

  render();
  return {
    panel,
    /** The channel the shell shows: the call's own gives the panel the room to fill. */
    showing(channelId) {
      shownChannel = channelId;
      render();
    },
    join,
    leave,
    watchServer,
    participants,
    destroy,
    isCallKind: (kind) => CALL_KINDS.has(kind),
    get call() {
      return call;
    },
  };
}
