// Voice and video channels in the shell: joining a channel's call by clicking it, and the docked
// call panel that stays while the person reads and writes in other channels. This module holds
// the call and wires the panel's parts: its tiles (call-tiles.js, media through call-media.js,
// placed by call-layout.js), its buttons (call-controls.js), its title and status line
// (call-status.js); who is in each channel's call, in the sidebar, is call-participants.js.

import { h } from "../dom.js";
import { icon } from "../icons.js";
import { describeError } from "../error-messages.js";
import { CallError, GroupCall } from "../calls/group.js";
import { createCallControls } from "./call-controls.js";
import { SOUND_BLOCKED_TEXT } from "./call-media.js";
import { createCallParticipants } from "./call-participants.js";
import { CALL_KINDS, callStatusText, callTitle, joinErrorText } from "./call-status.js";
import { createCallTiles } from "./call-tiles.js";

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
  // Join clicks so far: a join still on its way when a later one starts gives way to it.
  let joinAttempts = 0;
  let callChannel = null; // {server_id, channel_id, name, kind}
  let errorText = "";
  let shownChannel = null; // the channel open beside the panel (the call's own: the panel fills it)

  const sidebar = createCallParticipants({
    client,
    sync,
    session,
    getCall: () => call,
    isSpeaking: (userId) => tiles.isSpeaking(userId),
    onChange,
  });
  const tiles = createCallTiles({ client, sync, session, getCall: () => call, onChange: render, onSpeaking: sidebar.markSpeaking });
  const controls = createCallControls({
    onMute: () => call?.setMuted(!call.muted),
    onDeafen: () => {
      if (!call) return;
      call.setDeafened(!call.deafened);
      tiles.applyDeafen();
    },
    onCamera: () => act(() => call?.setCamera(!call.cameraTrack)),
    onScreen: () => act(() => call?.setScreenShare(!call.screenTrack)),
    onLeave: () => leave(),
  });

  // --- the docked panel -------------------------------------------------------------------------
  const errorLine = h("p", { class: "form-error call-error", role: "alert", "data-testid": "call-error" });
  const title = h("span", { class: "call-title", "data-testid": "call-title" });
  const status = h("span", { class: "call-status muted", "data-testid": "call-status" });
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
    text: SOUND_BLOCKED_TEXT,
    onclick: () => tiles.playback.unblock(),
  });
  const header = h("div", { class: "call-header" }, h("div", { class: "call-heading" }, title, status));
  const body = h("div", { class: "call-body" }, header, tiles.grid, controls.el);
  const panel = h("section", { class: "call-panel", "data-testid": "call-panel", "aria-label": "Call" }, errorRow, soundButton, body);

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
    soundButton.hidden = !call || !tiles.playback.blocked;
    if (!call) return;
    title.textContent = callTitle(callChannel);
    status.textContent = callStatusText({
      selfUserId: session.userId,
      peers: call.peerList,
      foreignCount: call.foreign.length,
      problem: call.transport?.problem ?? null,
    });
    panel.classList.toggle("stage", shownChannel === call.roomId);
    controls.render(call);
    tiles.render();
  }

  // --- joining and leaving --------------------------------------------------------------------

  /**
   * Join the call of a voice or video channel (leaving the current one first). Clicked again
   * elsewhere while this one is on its way (leaving, joining the room), the later click wins:
   * this one stops at its next step.
   */
  async function join(server, channel) {
    if (!CALL_KINDS.has(channel.kind)) return;
    if (call && call.roomId === channel.channel_id) return;
    const attempt = ++joinAttempts;
    setError("");
    if (!has(server, "connect")) {
      setError(`You need the connect permission to join the call in ${channel.name}.`);
      return;
    }
    if (call) await leave();
    if (attempt !== joinAttempts) return;
    if (!sync.room(channel.channel_id)) {
      try {
        await client.joinRoom(channel.channel_id);
        await waitForRoom(channel.channel_id);
      } catch (error) {
        if (attempt === joinAttempts) setError(`Could not join ${channel.name}: ${describeError(error)}`);
        return;
      }
      if (attempt !== joinAttempts) return;
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
        tiles.clear();
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
      tiles.clear();
      setError(joinErrorText(error, channel.name, describeError));
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

  async function leave() {
    const current = call;
    if (!current) return;
    await current.leave();
  }

  async function destroy() {
    sidebar.destroy();
    await leave().catch(() => {});
    tiles.destroy();
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
    watchServer: sidebar.watchServer,
    participants: sidebar.participants,
    destroy,
    isCallKind: (kind) => CALL_KINDS.has(kind),
    get call() {
      return call;
    },
  };
}
