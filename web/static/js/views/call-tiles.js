// The call panel's tiles: one per device in the call (ours, each peer's, a screen shared through
// the SFU, a member in the call from another app), each with its video or face, name, marks
// (muted, deafened, camera off) and connection state; who is speaking, and the speaker
// highlighted (pickSpeaker). Placed by call-layout.js; media played through call-media.js.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { SpeakingMonitor } from "../calls/group.js";
import { avatar } from "../avatar.js";
import { fitTiles, pickSpeaker } from "./call-layout.js";
import { createPlayback } from "./call-media.js";
import { FOREIGN_LABEL, peerStateLabel } from "./call-status.js";

/**
 * @typedef {object} Tile
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {HTMLAudioElement | null} audio  none on our own tiles
 * @property {HTMLElement} face
 * @property {HTMLElement} label
 * @property {HTMLElement} state
 * @property {HTMLElement} mic
 * @property {HTMLElement} deaf
 * @property {HTMLElement} camera
 * @property {string} userId
 */

/**
 * @param {object} options
 * @param {import("../matrix.js").MatrixClient} options.client
 * @param {import("../sync.js").SyncEngine} options.sync
 * @param {{userId: string}} options.session
 * @param {() => import("../calls/group.js").GroupCall | null} options.getCall  the call shown
 * @param {() => void} options.onChange  the panel should be drawn again (sound held back or not)
 * @param {(userId: string, on: boolean) => void} options.onSpeaking  a person started or
 *   stopped speaking (the sidebar shows it too)
 */
export function createCallTiles({ client, sync, session, getCall, onChange, onSpeaking }) {
  const speaking = new Set(); // user ids speaking now (in our call)
  const speakingTiles = new Set(); // tile ids speaking now
  let speaker = null; // the tile highlighted as the speaker (pickSpeaker)
  /** @type {Map<string, Tile>} peer id | "self" | "self-screen" | "foreign|…" → its tile */
  const tiles = new Map();
  const grid = h("div", { class: "call-tiles", "data-testid": "call-tiles" });
  const layoutTiles = fitTiles(grid);
  const playback = createPlayback({
    active: () => Boolean(getCall()),
    sounds: () => [...tiles.values()].map((tile) => tile.audio).filter(Boolean),
    onChange,
  });

  const monitor = new SpeakingMonitor((id, on) => {
    const call = getCall();
    const userId = id === "self" ? session.userId : (call?.peers.get(id)?.userId ?? null);
    if (!userId) return;
    if (on) speakingTiles.add(id);
    else speakingTiles.delete(id);
    const stillSpeaking = [...speakingTiles].some((t) => (t === "self" ? session.userId : call?.peers.get(t)?.userId) === userId);
    if (stillSpeaking) speaking.add(userId);
    else speaking.delete(userId);
    showSpeaking(userId);
    showSpeaker();
  });

  function avatarOf(userId) {
    const call = getCall();
    return call ? (sync.room(call.roomId)?.avatarOf(userId) ?? null) : null;
  }

  function nameOf(userId) {
    const call = getCall();
    const room = call ? sync.room(call.roomId) : null;
    return room ? room.displayName(userId) : userId.replace(/^@/, "").split(":")[0];
  }

  /** @returns {Tile} */
  function tileFor(id, userId) {
    let tile = tiles.get(id);
    if (tile) return tile;
    const video = /** @type {HTMLVideoElement} */ (h("video", { class: "call-video", autoplay: true, playsinline: true, "data-testid": "call-video" }));
    video.muted = true; // sound plays through the tile's <audio>, which deafen mutes
    const audio = id === "self" ? null : /** @type {HTMLAudioElement} */ (h("audio", { autoplay: true, "data-testid": "call-audio" }));
    const face = avatar(client, { mxc: avatarOf(userId), name: nameOf(userId), id: userId, size: 48, className: "call-face avatar" });
    const label = h("span", { class: "call-name", "data-testid": "call-tile-name", text: nameOf(userId) });
    const state = h("span", { class: "call-peer-state", "data-testid": "peer-state" });
    const mark = (testid, name, text) =>
      h("span", { class: "call-mark", "data-testid": testid, title: text, "aria-label": text, role: "img" }, icon(name, { size: 16 }));
    const mic = mark("tile-muted", "mic-off", "Muted");
    const deaf = mark("tile-deafened", "headphone-off", "Deafened");
    const camera = mark("tile-camera-off", "video-off", "Camera off");
    const el = h(
      "div",
      { class: "call-tile", "data-testid": "call-tile", "data-user-id": userId, "data-peer": id },
      video,
      face,
      h("div", { class: "call-tile-footer" }, label, mic, deaf, camera, state),
      audio,
    );
    tile = { el, video, audio, face, label, state, mic, deaf, camera, userId };
    tiles.set(id, tile);
    return tile;
  }

  /** Draw the call's tiles: added, updated and removed to match who is in it now. */
  function render() {
    const call = getCall();
    if (!call) return;
    const foreignIds = call.foreign.map((m) => `foreign|${m.userId}|${m.deviceId}`);
    // On the SFU our screen is a feed of its own (janus.js), shown as a tile of its own; on the
    // mesh it takes the camera's place in our tile.
    const ownScreen = call.transport && call.screenTrack ? call.screenTrack : null;
    const wanted = new Set(["self", ...(ownScreen ? ["self-screen"] : []), ...call.peers.keys(), ...foreignIds]);
    for (const [id, tile] of tiles) {
      if (!wanted.has(id)) {
        tile.el.remove();
        if (tile.video) tile.video.srcObject = null;
        if (tile.audio) tile.audio.srcObject = null;
        monitor.unwatch(id);
        speakingTiles.delete(id);
        tiles.delete(id);
      }
    }
    const video = call.kind === "video";
    const self = tileFor("self", session.userId);
    const localVideo = call.transport ? call.cameraTrack : call.localVideoTrack;
    playback.attach(self.video, localVideo ? [localVideo] : []);
    self.el.classList.toggle("has-video", Boolean(localVideo));
    self.el.classList.add("self");
    showMarks(self, { audio: call.muted, deafened: call.deafened, cameraOff: video && !localVideo });
    self.state.textContent = "You";
    if (call.micStream) monitor.watch("self", call.micStream);
    const nodes = [self.el];
    const screens = [];
    if (ownScreen) {
      const tile = tileFor("self-screen", session.userId);
      playback.attach(tile.video, [ownScreen]);
      tile.el.classList.add("has-video", "screen", "self");
      tile.label.textContent = "Your screen";
      showMarks(tile, {});
      tile.state.textContent = "You";
      nodes.push(tile.el);
      screens.push(tile.el);
    }
    for (const [id, peer] of call.peers) {
      const tile = tileFor(id, peer.userId);
      playback.attach(tile.video, peer.stream.getVideoTracks());
      if (tile.audio) playback.attach(tile.audio, peer.stream.getAudioTracks());
      const hasVideo = peer.stream.getVideoTracks().length > 0 && !peer.remoteMuted.video;
      tile.el.classList.toggle("has-video", hasVideo && video);
      tile.el.classList.toggle("screen", Boolean(peer.screen));
      tile.label.textContent = peer.screen ? `${nameOf(peer.userId)}'s screen` : nameOf(peer.userId);
      showMarks(
        tile,
        peer.screen ? {} : { audio: peer.remoteMuted.audio, deafened: peer.deafened, cameraOff: video && !hasVideo },
      );
      tile.state.textContent = peerStateLabel(peer.state);
      tile.el.dataset.state = peer.state;
      // The talking indicator reads what we receive of them (SpeakingMonitor.watchReceiver).
      monitor.watchReceiver(id, peer.pc?.getReceivers().find((r) => r.track?.kind === "audio") ?? null);
      nodes.push(tile.el);
      if (peer.screen) screens.push(tile.el);
    }
    call.foreign.forEach((member, i) => {
      // No media reaches Guilds from them: a face and the app note, no "Connecting…".
      const tile = tileFor(foreignIds[i], member.userId);
      showMarks(tile, {});
      tile.state.textContent = FOREIGN_LABEL;
      tile.el.dataset.state = "foreign";
      tile.label.textContent = nameOf(member.userId);
      nodes.push(tile.el);
    });
    // A screen share is featured (call-layout.js): the first one shared of those shown.
    for (const node of nodes) node.classList.toggle("featured", node === screens[0]);
    // Re-append in order only when it changed, so playing videos are not disturbed.
    const current = [...grid.children];
    if (current.length !== nodes.length || current.some((node, i) => node !== nodes[i])) grid.replaceChildren(...nodes);
    layoutTiles();
    applyDeafen();
    for (const userId of speaking) showSpeaking(userId);
    showSpeaker();
  }

  /** A tile's marks: muted, deafened, camera off (each hidden when not so). */
  function showMarks(tile, { audio = false, deafened = false, cameraOff = false }) {
    tile.mic.hidden = !audio || deafened;
    tile.deaf.hidden = !deafened;
    tile.camera.hidden = !cameraOff;
    tile.el.dataset.muted = String(audio);
    tile.el.dataset.deafened = String(deafened);
    tile.el.dataset.cameraOff = String(cameraOff);
  }

  /** Highlight the speaker's tile: the loudest speaking now, kept until another speaks. */
  function showSpeaker() {
    speaker = pickSpeaker(
      tiles.has(speaker ?? "") ? speaker : null,
      [...speakingTiles].filter((id) => tiles.has(id)).map((id) => ({ id, level: monitor.level(id) })),
    );
    for (const [id, tile] of tiles) tile.el.classList.toggle("active-speaker", id === speaker);
  }

  /** The speaking ring: on a user in the sidebar, on each of their tiles that makes sound. */
  function showSpeaking(userId) {
    onSpeaking(userId, speaking.has(userId));
    for (const [id, tile] of tiles) if (tile.userId === userId) tile.el.classList.toggle("speaking", speakingTiles.has(id));
  }

  /** Deafened or not, as the call is: every peer's sound muted or not. */
  function applyDeafen() {
    const deafened = Boolean(getCall()?.deafened);
    for (const tile of tiles.values()) if (tile.audio) tile.audio.muted = deafened;
  }

  /** The call ended: no tile, nobody speaking, no sound held back. */
  function clear() {
    for (const [id, tile] of tiles) {
      tile.video.srcObject = null;
      if (tile.audio) tile.audio.srcObject = null;
      monitor.unwatch(id);
    }
    tiles.clear();
    grid.replaceChildren();
    speaking.clear();
    speakingTiles.clear();
    speaker = null;
    playback.reset();
  }

  return {
    grid,
    render,
    clear,
    applyDeafen,
    playback,
    /** @param {string} userId  speaking now in our call */
    isSpeaking: (userId) => speaking.has(userId),
    destroy() {
      playback.destroy();
      monitor.stop();
    },
  };
}
