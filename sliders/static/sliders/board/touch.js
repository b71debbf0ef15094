// A finger on a slider. Chromium moves a range input's thumb to where a finger lands as soon
// as it lands (on touchstart), before anyone knows whether the finger will scroll the page or
// slide the thumb: a swipe meant to scroll, begun on a slider, changed its value. Here the page
// owns touches on its sliders:
// - A touch that goes more up or down than across once it has moved TOUCH_SLOP_PX is a scroll:
//   the browser scrolls (board.css gives the inputs `touch-action: pan-y`) and nothing changes.
// - One that goes more across than up or down slides the thumb: from then on the thumb follows
//   the finger, as a native slider does.
// - A tap (a touch that ends without moving that far) sets the value where it landed, as a
//   click does.
// While a touch is undecided, whatever the browser itself does to the input is undone
// (`touchHolds`), so nothing is shown, stored or sent until the gesture is known.

const TOUCH_SLOP_PX = 10; // how far a finger moves before its direction counts (about 1.5 mm)

/**
 * Follow touches on the entry's input. `hooks` says what a decided touch does:
 *   start()       the finger is sliding the thumb (sideways)
 *   move(value)   the thumb is at `value` (the input shows it already)
 *   end()         the sliding finger was lifted (or the browser took the gesture over)
 *   tap(value)    a tap set `value` (the input shows it already)
 */
export function followTouches(entry, hooks) {
  const { input } = entry;
  input.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "touch" || input.disabled) return;
    // Every finger is followed, not only the first: a second finger that lands on another
    // slider (two faders at once, or two fingers scrolling) is decided the same way. A finger
    // that lands on a slider another finger already holds changes nothing.
    if (entry.touch && entry.touch.state !== "ended") return;
    entry.touch = {
      pointerId: event.pointerId,
      x: event.clientX,
      y: event.clientY,
      shown: input.value, // what the input shows; the browser's own moves are undone to it
      state: "undecided", // then "sideways", "scroll" or "ended"
    };
  });
  input.addEventListener("pointermove", (event) => {
    const touch = entry.touch;
    if (!touch || event.pointerId !== touch.pointerId) return;
    if (touch.state === "undecided") {
      const dx = Math.abs(event.clientX - touch.x);
      const dy = Math.abs(event.clientY - touch.y);
      if (Math.max(dx, dy) < TOUCH_SLOP_PX) return;
      if (dy >= dx) {
        touch.state = "scroll"; // the browser scrolls (and cancels the pointer) or nothing
        return;
      }
      touch.state = "sideways";
      hooks.start();
    }
    if (touch.state === "sideways") {
      const before = touch.shown;
      const value = valueAt(entry, event.clientX);
      if (touch.shown !== before) hooks.move(value);
    }
  });
  input.addEventListener("pointerup", (event) => {
    const touch = entry.touch;
    if (!touch || event.pointerId !== touch.pointerId) return;
    const was = touch.state;
    finish(entry, touch);
    if (was === "sideways") hooks.end();
    else if (was === "undecided") hooks.tap(valueAt(entry, event.clientX));
  });
  input.addEventListener("pointercancel", (event) => {
    const touch = entry.touch;
    if (!touch || event.pointerId !== touch.pointerId) return;
    const was = touch.state;
    finish(entry, touch);
    if (was === "sideways") hooks.end();
  });
}

/** The touch is over. It still holds the input until the browser has finished its own
 * handling of the touch (Chromium sends `change` after touchend), then lets go. */
function finish(entry, touch) {
  touch.state = "ended";
  setTimeout(() => {
    if (entry.touch === touch) entry.touch = null;
  }, 0);
}

/**
 * While a touch is on the entry's input (undecided, or already decided by this module), the
 * browser's own value changes are undone: true means "ignore this input or change event".
 */
export function touchHolds(entry) {
  const touch = entry.touch;
  if (!touch) return false;
  if (entry.input.value !== touch.shown) entry.input.value = touch.shown;
  return true;
}

/** The input shows `value` now (a server value or the person's): keep it when undoing. */
export function noteShown(entry) {
  if (entry.touch) entry.touch.shown = entry.input.value;
}

/** The value under a finger at `clientX`, on the slider's grid, shown in its input. */
function valueAt(entry, clientX) {
  const { input } = entry;
  const rect = input.getBoundingClientRect();
  const thumb = thumbWidth(input);
  const span = rect.width - thumb;
  const fraction = span > 0 ? Math.min(1, Math.max(0, (clientX - rect.left - thumb / 2) / span)) : 0;
  // The browser snaps the value to the step grid and the range, as it does for its own moves.
  input.value = String(entry.min + fraction * (entry.max - entry.min));
  if (entry.touch) entry.touch.shown = input.value;
  return Number(input.value);
}

/** The thumb's width in CSS pixels (board.css's --thumb-size), so that the thumb's centre
 * lands under the finger as with the browser's own sliding. */
function thumbWidth(input) {
  const size = parseFloat(getComputedStyle(input).getPropertyValue("--thumb-size"));
  return Number.isFinite(size) ? size : 28;
}
