// A finger's (or pen's) drag in the sidebar (views/channel-reorder.js), with pointer events, as
// phones have no drag and drop of their own: a press held still picks the row up, the finger
// moves it (the list does not scroll meanwhile), lifting drops it. A finger that moves at once
// scrolls the list as always, and a short tap opens the channel.

// How long a finger rests on a row before it is picked up, and how far it may wander meanwhile.
const LONG_PRESS_MS = 350;
const PRESS_SLOP_PX = 8;

/**
 * Listen for a finger's drags on the channel list.
 * @param {HTMLElement} root  the channel list
 * @param {object} drag  the drag's steps, shared with the mouse's (channel-reorder.js)
 * @param {(target: EventTarget|null) => Element|null} drag.dragSource  what a press may pick up
 * @param {(source: Element) => void} drag.pickUp
 * @param {(point: {target: EventTarget|null, clientY: number}) => void} drag.hover
 * @param {(point: {target: EventTarget|null, clientY: number}) => void} drag.drop
 * @param {() => void} drag.endDrag
 * @param {() => boolean} drag.isDragging
 * @returns {{pressing: () => boolean}}  a finger is down on a row (the mouse's handlers stand back)
 */
export function attachTouchDrag(root, { dragSource, pickUp, hover, drop, endDrag, isDragging }) {
  /** @type {{pointerId: number, x: number, y: number, source: Element, timer: number, active: boolean}|null} */
  let press = null;

  /** @type {((click: Event) => void)|null} the click after a finger's drop, to swallow */
  let swallow = null;
  function stopSwallowing() {
    if (swallow) root.removeEventListener("click", swallow, { capture: true });
    swallow = null;
  }

  function release() {
    if (!press) return;
    clearTimeout(press.timer);
    press = null;
  }

  /** Where the finger is, as a drag event would say it. */
  const pointAt = (event) => ({ target: document.elementFromPoint(event.clientX, event.clientY), clientY: event.clientY });

  root.addEventListener("pointerdown", (event) => {
    stopSwallowing(); // a new press: its click is its own
    if (event.pointerType === "mouse" || !event.isPrimary) return;
    const source = dragSource(event.target);
    if (!source) return;
    release();
    const started = {
      pointerId: event.pointerId,
      x: event.clientX,
      y: event.clientY,
      source,
      active: false,
      timer: window.setTimeout(() => {
        if (press !== started || !source.isConnected) return;
        started.active = true;
        pickUp(source);
        navigator.vibrate?.(10);
      }, LONG_PRESS_MS),
    };
    press = started;
  });
  // Not passive: once a row is picked up, the finger's moves are the drag's, not a scroll.
  root.addEventListener(
    "touchmove",
    (event) => {
      if (press?.active && event.cancelable) event.preventDefault();
    },
    { passive: false },
  );
  // The long press's own menu (text selection, "open link") would cover the drag.
  root.addEventListener("contextmenu", (event) => {
    if (press) event.preventDefault();
  });
  window.addEventListener("pointermove", (event) => {
    if (!press || event.pointerId !== press.pointerId) return;
    if (!press.active) {
      // Moved before the press was long enough: a scroll or a swipe, not a drag.
      if (Math.hypot(event.clientX - press.x, event.clientY - press.y) > PRESS_SLOP_PX) release();
      return;
    }
    event.preventDefault();
    hover(pointAt(event));
  });
  window.addEventListener("pointerup", (event) => {
    if (!press || event.pointerId !== press.pointerId) return;
    const wasActive = press.active;
    release();
    if (!wasActive || !isDragging()) return;
    // The lift ends the drag; a click that follows it must not open the channel.
    stopSwallowing();
    swallow = (click) => {
      click.preventDefault();
      click.stopPropagation();
      stopSwallowing();
    };
    root.addEventListener("click", swallow, { capture: true });
    drop(pointAt(event));
  });
  window.addEventListener("pointercancel", (event) => {
    if (!press || event.pointerId !== press.pointerId) return;
    const wasActive = press.active;
    release();
    if (wasActive) endDrag();
  });

  return { pressing: () => press !== null };
}
