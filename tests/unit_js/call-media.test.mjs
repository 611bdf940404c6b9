// A call's media playback (web/static/js/views/call-media.js) under a browser's autoplay policy:
// a refused play() is remembered so the panel can ask, the next interaction plays it, and a
// later play() that succeeds on its own stops the asking.

import assert from "node:assert/strict";
import { test } from "node:test";

class FakeStream {
  constructor(tracks) {
    this.tracks = tracks;
  }
  getTracks() {
    return this.tracks;
  }
}

/** A media element whose play() the "browser" allows or refuses as `policy.allowed` says. */
function element(policy) {
  return {
    srcObject: null,
    paused: true,
    plays: 0,
    play() {
      this.plays += 1;
      if (!policy.allowed) {
        const error = new Error("play() needs a gesture");
        error.name = "NotAllowedError";
        return Promise.reject(error);
      }
      this.paused = false;
      return Promise.resolve();
    },
  };
}

const documentEvents = new EventTarget();
Object.assign(globalThis, { MediaStream: FakeStream, document: documentEvents });
const { createPlayback } = await import("../../web/static/js/views/call-media.js");

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function setUp() {
  const policy = { allowed: false };
  const sounds = [element(policy), element(policy)];
  let changes = 0;
  const playback = createPlayback({ active: () => true, sounds: () => sounds, onChange: () => (changes += 1) });
  return { policy, sounds, playback, changes: () => changes };
}

test("a refused play is asked for, and any interaction plays every held-back sound", async () => {
  const { policy, sounds, playback, changes } = setUp();
  playback.attach(sounds[0], ["a"]);
  await settle();
  assert.equal(playback.blocked, true);
  assert.equal(changes(), 1);
  policy.allowed = true;
  // A key press anywhere counts, not only the panel's button.
  documentEvents.dispatchEvent(new Event("keydown"));
  await settle();
  assert.equal(playback.blocked, false);
  assert.equal(sounds[0].paused, false);
  assert.equal(sounds[1].plays, 0, "an element with nothing to play is left alone");
  playback.destroy();
});

test("a held-back sound that later plays on its own stops the asking once nothing waits", async () => {
  const { policy, sounds, playback } = setUp();
  playback.attach(sounds[0], ["a"]);
  playback.attach(sounds[1], ["b"]);
  await settle();
  assert.equal(playback.blocked, true);
  policy.allowed = true;
  // New tracks for the first (during a gesture, say): it plays, the second still waits.
  playback.attach(sounds[0], ["a", "c"]);
  await settle();
  assert.equal(sounds[0].paused, false);
  assert.equal(playback.blocked, true);
  playback.attach(sounds[1], ["b", "d"]);
  await settle();
  assert.equal(playback.blocked, false);
  playback.destroy();
});

test("the same tracks again are not played again", async () => {
  const { sounds, playback } = setUp();
  playback.attach(sounds[0], ["a"]);
  playback.attach(sounds[0], ["a"]);
  await settle();
  assert.equal(sounds[0].plays, 1);
  playback.destroy();
});
