// Playing a call's media in the page's <video> and <audio> elements: each element is pointed at
// a fresh MediaStream whenever its tracks change, and a browser that holds the sound back until
// the person interacts with the page (its autoplay policy) is remembered, so the panel can ask,
// and played again at the next click or key press.

/** What a call's panel says while the browser holds its sound back (the button plays it). */
export const SOUND_BLOCKED_TEXT = "Your browser is holding the call's sound back: click to hear it";

/**
 * @param {object} options
 * @param {() => boolean} options.active  a call is on (a refusal after it ended is no matter)
 * @param {() => HTMLMediaElement[]} options.sounds  the elements to play again once allowed
 * @param {() => void} options.onChange  `blocked` changed: the panel should be drawn again
 */
export function createPlayback({ active, sounds, onChange }) {
  let blocked = false;

  /**
   * Point a media element at these tracks, with a fresh MediaStream whenever they change, and
   * play it. Chromium never starts an element whose MediaStream had no track of its kind when it
   * was assigned: a track added to that stream later stays silent (paused, readyState 0, and
   * play() never settles). That is how a caller, whose tile appears before the remote tracks
   * arrive, heard nobody.
   * @param {HTMLMediaElement} element
   * @param {MediaStreamTrack[]} tracks
   */
  function attach(element, tracks) {
    const current = element.srcObject instanceof MediaStream ? element.srcObject.getTracks() : [];
    if (current.length === tracks.length && tracks.every((track) => current.includes(track))) return;
    element.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) play(element);
  }

  function play(element) {
    element.play().then(
      () => {
        // Played after all (a later attach, during a gesture): ask no more once nothing waits.
        if (blocked && sounds().every((sound) => !sound.srcObject || !sound.paused)) {
          blocked = false;
          onChange();
        }
      },
      (error) => {
        // Blocked until the person interacts with the page (autoplay policy): ask, retry then.
        if (error?.name !== "NotAllowedError" || !active()) return;
        blocked = true;
        onChange();
      },
    );
  }

  /** The person interacted with the page: play what was held back. */
  function unblock() {
    if (!blocked) return;
    blocked = false;
    for (const element of sounds()) if (element.srcObject) play(element);
    onChange();
  }

  // Any interaction allows playback again, not only the panel's button.
  const onInteraction = () => unblock();
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, onInteraction, true);

  return {
    attach,
    unblock,
    /** The browser is holding the call's sound back. */
    get blocked() {
      return blocked;
    },
    /** The call ended: nothing is held back any more. */
    reset() {
      blocked = false;
    },
    destroy() {
      for (const type of ["pointerdown", "keydown"]) document.removeEventListener(type, onInteraction, true);
    },
  };
}
