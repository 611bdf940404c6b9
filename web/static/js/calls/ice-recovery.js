// When a 1:1 call's connection fails or drops, what to do and when: restart ICE (fresh
// credentials and candidates, negotiated with m.call.negotiate) a bounded number of times, then
// give up. A pure state machine over the peer connection's `connectionState`, with its timers
// injected, so calls/direct.js does the I/O and tests/unit_js/ice-recovery.test.mjs the logic.
//
// As matrix-js-sdk's MatrixCall does (src/webrtc/call.ts, onIceConnectionStateChanged): "failed"
// restarts ICE at once; "disconnected" often heals by itself (a lost packet burst, a network
// switch), so it restarts only if it lasts. Unlike matrix-js-sdk, restarts are bounded: each
// attempt gets a deadline (the other side may never answer the renegotiation, and then the
// connection stays "failed" without another event), and after the last one the call ends.

/** Restarts tried, after a failure, before the call ends (reset once it connects again). */
export const MAX_ICE_RESTARTS = 3;
/** How long "disconnected" may last before it counts as a failure (matrix-js-sdk: 2 s). */
export const DISCONNECTED_GRACE_MS = 3_000;
/** A restart that has not connected by then has failed (a dead attempt says nothing itself). */
export const RESTART_ATTEMPT_MS = 30_000;

/**
 * @typedef {object} RecoveryHooks
 * @property {() => void} restart  restart ICE now (RTCPeerConnection.restartIce)
 * @property {() => void} giveUp  no attempt left: end the call
 * @property {(fn: () => void, ms: number) => unknown} [setTimer]
 * @property {(handle: unknown) => void} [clearTimer]
 * @property {number} [maxRestarts]
 * @property {number} [graceMs]
 * @property {number} [attemptMs]
 */

export class IceRecovery {
  /** @param {RecoveryHooks} hooks */
  constructor({
    restart,
    giveUp,
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (handle) => clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (handle)),
    maxRestarts = MAX_ICE_RESTARTS,
    graceMs = DISCONNECTED_GRACE_MS,
    attemptMs = RESTART_ATTEMPT_MS,
  }) {
    this._restart = restart;
    this._giveUp = giveUp;
    this._setTimer = setTimer;
    this._clearTimer = clearTimer;
    this.maxRestarts = maxRestarts;
    this.graceMs = graceMs;
    this.attemptMs = attemptMs;
    /** Restarts since the connection last was connected. */
    this.attempts = 0;
    /** Restarts over the whole call (what a test or a log wants to know). */
    this.restarts = 0;
    /** True while an attempt runs (restarted, not connected yet). */
    this.recovering = false;
    this.done = false;
    this._grace = null;
    this._deadline = null;
  }

  /**
   * The peer connection's `connectionState` changed.
   * @param {RTCPeerConnectionState} state
   */
  onState(state) {
    if (this.done) return;
    if (state !== "disconnected") this._clearGrace();
    switch (state) {
      case "connected":
        this._clearDeadline();
        this.attempts = 0;
        this.recovering = false;
        return;
      case "failed":
        this._failed();
        return;
      case "disconnected":
        // While an attempt runs, its deadline (or "failed") decides; otherwise wait a little.
        if (!this.recovering && this._grace === null) {
          this._grace = this._setTimer(() => {
            this._grace = null;
            this._failed();
          }, this.graceMs);
        }
        return;
      case "closed":
        this.stop();
        return;
      default:
    }
  }

  /** The call ended: no timer may fire any more. */
  stop() {
    this.done = true;
    this._clearGrace();
    this._clearDeadline();
  }

  _failed() {
    if (this.done) return;
    this._clearDeadline();
    if (this.attempts >= this.maxRestarts) {
      this.stop();
      this._giveUp();
      return;
    }
    this.attempts += 1;
    this.restarts += 1;
    this.recovering = true;
    this._deadline = this._setTimer(() => {
      this._deadline = null;
      this._failed();
    }, this.attemptMs);
    this._restart();
  }

  _clearGrace() {
    if (this._grace === null) return;
    this._clearTimer(this._grace);
    this._grace = null;
  }

  _clearDeadline() {
    if (this._deadline === null) return;
    this._clearTimer(this._deadline);
    this._deadline = null;
  }
}
