// A 1:1 call's candidates and ICE restarts around its descriptions (web/static/js/calls/direct.js),
// with a fake peer connection and a homeserver whose sends we release by hand.

import assert from "node:assert/strict";
import { test } from "node:test";

import { DirectCall } from "../../web/static/js/calls/direct.js";

const SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:first\r\n";
const TURN = [{ urls: ["turn:127.0.0.1:3478?transport=udp"], username: "u", credential: "fresh" }];
const tick = () => new Promise((r) => setTimeout(r, 0));
const RELAY = "candidate:1 1 udp 2 127.0.0.1 50000 typ relay raddr 0.0.0.0 rport 0 generation 0 ufrag first";

class FakePeerConnection extends EventTarget {
  constructor() {
    super();
    this.localDescription = null;
    this.signalingState = "stable";
    this.iceGatheringState = "new";
    this.connectionState = "new";
    this.restarts = 0;
    this.remoteDescriptions = [];
    this.configurations = [];
  }
  getConfiguration() {
    return { iceTransportPolicy: "all", iceServers: [] };
  }
  setConfiguration(configuration) {
    this.configurations.push(configuration);
  }
  async createOffer() {
    return { type: "offer", sdp: SDP };
  }
  async setLocalDescription(description) {
    this.localDescription = description ?? { type: this.signalingState === "have-remote-offer" ? "answer" : "offer", sdp: SDP };
    this.signalingState = this.localDescription.type === "offer" ? "have-local-offer" : "stable";
    this.iceGatheringState = "gathering";
  }
  async setRemoteDescription(description) {
    this.remoteDescriptions.push(description);
    this.signalingState = description.type === "offer" ? "have-remote-offer" : "stable";
  }
  getTransceivers() {
    return [{ mid: "0" }];
  }
  addTrack() {}
  restartIce() {
    this.restarts += 1;
  }
  close() {}
  /** A local candidate, or (null) the end of gathering, as Chromium reports them. */
  found(candidate) {
    if (candidate === null) {
      this.iceGatheringState = "complete";
      this.dispatchEvent(new Event("icegatheringstatechange"));
      return;
    }
    const event = new Event("icecandidate");
    event.candidate = { candidate, sdpMid: "0", sdpMLineIndex: 0 };
    this.dispatchEvent(event);
  }
}

/** A client whose sends stay pending until `release(type)`; `sent` lists them in order. */
function fakeClient() {
  const sent = [];
  const pending = new Map();
  return {
    sent,
    sendEvent(roomId, type, content) {
      return new Promise((resolve) => {
        const release = () => {
          sent.push({ type, content });
          resolve({ event_id: `$${sent.length}` });
        };
        if (type === "m.call.invite" || type === "m.call.negotiate") pending.set(type, release);
        else release();
      });
    },
    /** Wait until a send of `type` is pending. */
    async pendingSend(type) {
      for (let i = 0; i < 100 && !pending.has(type); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(pending.has(type), `no ${type} was sent`);
    },
    async release(type) {
      await this.pendingSend(type);
      pending.get(type)();
      pending.delete(type);
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

function newCall(client, direction = "outbound") {
  globalThis.RTCPeerConnection = FakePeerConnection;
  const stream = { id: "s", getTracks: () => [], getVideoTracks: () => [], getAudioTracks: () => [] };
  Object.defineProperty(globalThis, "navigator", {
    value: { mediaDevices: { getUserMedia: async () => stream } },
    configurable: true,
  });
  const manager = { client, rtcOptions: { iceServers: TURN }, inviteLifetimeMs: 60_000, _changed() {} };
  return new DirectCall(manager, { roomId: "!r", callId: "c1", direction, video: false, opponentUserId: "@bob:x" });
}

const candidatesSent = (client) =>
  client.sent.filter((e) => e.type === "m.call.candidates").flatMap((e) => e.content.candidates.map((c) => c.candidate));

test("candidates found while the invite's request is pending go out once it returns", async () => {
  const client = fakeClient();
  const call = newCall(client);
  const placed = call._placeCall();
  await client.pendingSend("m.call.invite");
  // The invite's SDP is written and its request pending when the TURN server, answering late,
  // gives the relay candidate (with relay-only ICE, the only one), then the end of gathering.
  call.pc.found(RELAY);
  call.pc.found(null);
  assert.deepEqual(client.sent, [], "nothing goes out before the invite");
  await client.release("m.call.invite");
  await placed;
  assert.doesNotMatch(client.sent[0].content.offer.sdp, /typ relay/);
  assert.deepEqual(
    client.sent.map((e) => e.type),
    ["m.call.invite", "m.call.candidates"],
  );
  assert.deepEqual(candidatesSent(client), [RELAY, ""]);
  call._end("user_hangup", "local");
});

test("an ICE restart's candidates wait for its m.call.negotiate offer", async () => {
  const client = fakeClient();
  const call = newCall(client);
  const placed = call._placeCall();
  await client.release("m.call.invite");
  await placed;
  await call._onAnswer({ sender: "@bob:x", content: { party_id: "p", answer: { type: "answer", sdp: SDP } } });
  assert.equal(call.established, true);

  call._restartIce();
  await tick();
  assert.equal(call.pc.restarts, 1);
  // Gathered anew with the ICE servers the homeserver hands out now (credentials run out).
  assert.deepEqual(call.pc.configurations, [{ iceTransportPolicy: "all", iceServers: TURN }]);
  const renegotiated = call._renegotiate(); // what negotiationneeded runs
  await new Promise((r) => setTimeout(r, 0));
  call.pc.found(RELAY.replace("ufrag first", "ufrag second"));
  call.pc.found(null);
  await new Promise((r) => setTimeout(r, 0));
  const before = candidatesSent(client);
  await client.release("m.call.negotiate");
  await renegotiated;
  const types = client.sent.map((e) => e.type);
  assert.deepEqual(before, [], "no candidate before the offer");
  assert.ok(types.indexOf("m.call.negotiate") < types.lastIndexOf("m.call.candidates"), types);
  assert.ok(candidatesSent(client).some((c) => c.includes("ufrag second")));
  call._end("user_hangup", "local");
});

test("a restart asked for before our answer is out happens once it is", async () => {
  const client = fakeClient();
  const call = newCall(client, "inbound");
  call.pc = new FakePeerConnection();
  call._restartIce();
  assert.equal(call.pc.restarts, 0, "_renegotiate could not send its offer yet");
  call._markEstablished();
  await tick();
  assert.equal(call.pc.restarts, 1);
});

test("an answer to an offer we no longer have is ignored, not applied", async () => {
  const client = fakeClient();
  const call = newCall(client);
  call.pc = new FakePeerConnection();
  call.opponentPartyId = "p";
  const stray = { content: { description: { type: "answer", sdp: SDP } } };
  await call._onNegotiate(stray, Date.now());
  assert.deepEqual(call.pc.remoteDescriptions, []);
});
