// What the server sends about the board: board:state (the whole board, on every new connection
// and when its structure changes) and slider:update(s) (values), applied to the slider entries.
//
// Rules this module keeps:
// - Never show an older value after a newer one (invariant 3): values go through
//   acceptServerValue (entries.js), and a connection's first board:state replaces the state
//   completely (connection.js forgets the held versions when it connects).
// - Text from the server (board and slider names) only ever goes into the page via textContent
//   (invariant 7).

import {
  acceptServerValue,
  createSliderElement,
  isInteracting,
  makeEntry,
  render,
  showOutput,
} from "./entries.js";
import { formatValue, isFiniteNumber } from "./format.js";
import { showHands, ungrab } from "./hands.js";
import { announcerEl, listEl, nameEl, noSlidersEl, page, sliders } from "./page.js";
import { showPresets } from "./presets.js";
import { cancelFlush, flushAll, listenTo, setCanEdit } from "./sending.js";
import { setPresence } from "./status.js";

// A slider someone else moves is read out once it has been still this long (not frame by frame).
const ANNOUNCE_AFTER_MS = 800;

export function onBoardState(state) {
  if (!state || typeof state !== "object" || !Array.isArray(state.sliders)) return;
  const firstState = page.awaitingState;
  if (isFiniteNumber(state.server_time)) {
    const offset = state.server_time - performance.now();
    if (firstState || page.serverClockOffset === null || offset > page.serverClockOffset) {
      page.serverClockOffset = offset; // a new connection may be another server: start afresh
    }
  }
  if (typeof state.name === "string") {
    nameEl.textContent = state.name;
    document.title = `${state.name} · Slider Sync`;
  }
  setPresence(state.clients);
  if (typeof state.hand === "string") page.myHand = state.hand;

  const seen = new Set();
  let index = 0;
  for (const item of state.sliders) {
    if (!item || typeof item.id !== "string" || seen.has(item.id)) continue;
    seen.add(item.id);
    let entry = sliders.get(item.id);
    if (!entry) {
      entry = listenTo(makeEntry(createSliderElement(item.id)));
      sliders.set(item.id, entry);
    }
    updateEntry(entry, item);
    showHands(entry, state.hands && typeof state.hands === "object" ? state.hands[item.id] : []);
    // Move the element into place only if it is out of place (moving a focused element blurs it).
    const current = listEl.children[index];
    if (current !== entry.container) listEl.insertBefore(entry.container, current ?? null);
    index += 1;
  }
  for (const entry of [...sliders.values()]) {
    if (!seen.has(entry.id)) removeEntry(entry);
  }
  noSlidersEl.hidden = sliders.size > 0;

  showPresets(Array.isArray(state.presets) ? state.presets : []);
  setCanEdit(state.can_edit === true);
  page.awaitingState = false;
  if (firstState) {
    page.serverDisconnects = 0;
    // Values the person chose while offline go out now, on top of the fresh state.
    flushAll();
  }
}

function updateEntry(entry, item) {
  if (typeof item.name === "string") entry.label.textContent = item.name;
  const { input } = entry;
  // Range first, then the value, so the browser does not clamp the value to the old range.
  if (isFiniteNumber(item.min) && isFiniteNumber(item.max) && item.min < item.max) {
    entry.min = item.min;
    entry.max = item.max;
    input.min = String(item.min);
    input.max = String(item.max);
  }
  if (isFiniteNumber(item.step) && item.step > 0) {
    entry.step = item.step;
    input.step = String(item.step);
  }
  entry.unit = typeof item.unit === "string" ? item.unit : "";
  entry.precision =
    Number.isInteger(item.precision) && item.precision >= 0 && item.precision <= 6
      ? item.precision
      : null;
  // A held value survives only if it is newer than the state's (an update can overtake a state).
  acceptServerValue(entry, item.value, item.version);
  render(entry);
  // The step may have changed how values are written.
  showOutput(entry, Number(input.value));
}

function removeEntry(entry) {
  ungrab(entry);
  clearTimeout(entry.announceTimer);
  cancelFlush(entry);
  clearTimeout(entry.retryTimer);
  clearTimeout(entry.pendingTimer);
  entry.container.remove();
  sliders.delete(entry.id);
}

export function onSliderUpdate(update) {
  if (!update || typeof update.id !== "string") return;
  const entry = sliders.get(update.id);
  if (!entry) return; // a slider we do not know yet: the board:state that adds it follows
  if (acceptServerValue(entry, update.value, update.version)) {
    render(entry);
    announceLater(entry);
  }
}

/** Tell screen reader users about a change someone else made, once the slider is still. */
function announceLater(entry) {
  clearTimeout(entry.announceTimer);
  entry.announceTimer = setTimeout(() => {
    if (isInteracting(entry) || entry.serverValue === null) return; // they are moving it
    announcerEl.textContent = `${entry.label.textContent}: ${formatValue(entry, entry.serverValue)}`;
  }, ANNOUNCE_AFTER_MS);
}
