// Slider entries: one per slider on the page, holding its elements, the newest server value
// and version, and what the person is doing with it; and how an entry is shown.
//
// Rules this module keeps:
// - Never show an older value after a newer one: a server value is applied only when its version
//   is greater than the one held (invariant 3; connection.js makes every new connection forget
//   the held versions, so its first board:state replaces the state completely).
// - The thumb the person is moving is never yanked away: server values for it are stored and
//   shown when they let go, if they are still the newest.

import { formatValue, isFiniteNumber } from "./format.js";
import { noteShown } from "./touch.js";

export function createSliderElement(id) {
  const container = document.createElement("div");
  container.className = "slider";
  container.dataset.sliderId = id;
  const label = document.createElement("label");
  label.htmlFor = `slider-${id}`;
  const output = document.createElement("output");
  output.id = `value-${id}`;
  output.htmlFor.add(`slider-${id}`);
  const input = document.createElement("input");
  input.type = "range";
  input.id = `slider-${id}`;
  input.dataset.sliderId = id;
  input.setAttribute("aria-describedby", `hands-${id} pending-${id}`);
  const hands = document.createElement("p");
  hands.className = "hands";
  hands.id = `hands-${id}`;
  const pending = document.createElement("p");
  pending.className = "pending";
  pending.id = `pending-${id}`;
  container.append(label, output, input, hands, pending);
  return container;
}

/** The entry for a slider's element; sending.js's listenTo makes it follow the person's input. */
export function makeEntry(container) {
  const input = container.querySelector('input[type="range"]');
  const entry = {
    id: container.dataset.sliderId,
    container,
    input,
    output: container.querySelector("output"),
    label: container.querySelector("label"),
    handsEl: container.querySelector(".hands"),
    pendingEl: container.querySelector(".pending"),
    pendingState: null, // what became of a value chosen while cut off (see showPending)
    pendingTimer: null,
    grabTimer: null, // while this page holds the slider: renews its hand on the server
    announceTimer: null,
    min: Number(input.min),
    max: Number(input.max),
    step: Number(input.step),
    unit: input.dataset.unit ?? "",
    precision: input.dataset.precision ? Number(input.dataset.precision) : null,
    version: null, // highest server version held (null: none since this connection opened)
    serverValue: null, // the value at that version
    seenVersion: null, // the last server version held, kept across reconnects
    pending: null, // a value the person chose that has not been sent yet
    base: null, // the version `pending` is based on, when it goes out after being cut off
    lastSentBase: null, // the version the last set sent was based on (for sending it again)
    chosen: null, // {seen, at} for the pending value: the version held and the time it was chosen
    lastSentChosen: null, // the same for the last set sent (a rate-limited retry sends it again)
    inflight: 0, // sets sent and not yet acked
    seq: 0, // number of the last set sent
    lastSentAt: -Infinity,
    lastSentValue: null,
    flushTimer: null,
    flushFrame: null,
    retryTimer: null,
    pointerDown: false,
    keyHeld: false,
    touch: null, // a finger on the input, while touch.js decides and follows it
  };
  const version = Number(input.dataset.version);
  if (input.dataset.version !== undefined && Number.isInteger(version)) {
    entry.version = version;
    entry.seenVersion = version;
    entry.serverValue = Number(input.value);
  }
  return entry;
}

export function isInteracting(entry) {
  return entry.pointerDown || entry.keyHeld;
}

/** Show the newest server value, unless the person's own value is still on its way. */
export function render(entry) {
  if (isInteracting(entry) || entry.pending !== null || entry.inflight > 0) return;
  if (entry.serverValue === null) return;
  showValue(entry, entry.serverValue);
}

function showValue(entry, value) {
  entry.input.value = String(value);
  noteShown(entry);
  showOutput(entry, value);
}

/** The number next to the slider, and how far the track is filled. */
export function showOutput(entry, value) {
  const text = formatValue(entry, value);
  entry.output.textContent = text;
  entry.input.setAttribute("aria-valuetext", text);
  const fraction = (value - entry.min) / (entry.max - entry.min);
  const percent = Number.isFinite(fraction) ? Math.min(100, Math.max(0, fraction * 100)) : 0;
  entry.input.style.setProperty("--fill", `${percent}%`);
}

/** A value from the server (update, ack or state): keep it only if it is newer than what we hold. */
export function acceptServerValue(entry, value, version) {
  if (!isFiniteNumber(value) || !Number.isInteger(version)) return false;
  if (entry.version !== null && version <= entry.version) return false;
  entry.version = version;
  entry.seenVersion = version;
  entry.serverValue = value;
  entry.input.dataset.version = String(version);
  return true;
}

const PENDING_TEXT = {
  waiting: "Waiting to send",
  sending: "Sending…",
  sent: "Sent",
  refused: "Not applied: changed meanwhile",
};
const PENDING_SHOWN_MS = { sent: 5000, refused: 10000 };

/**
 * Say under the slider what became of a value the person chose while the page was cut off:
 * "waiting" (to send), "sending", "sent" or "refused" (shown for a while), or null (nothing to
 * say). `text` replaces the state's usual words.
 */
export function showPending(entry, state, text) {
  clearTimeout(entry.pendingTimer);
  entry.pendingTimer = null;
  entry.pendingState = state in PENDING_TEXT ? state : null;
  entry.pendingEl.textContent = entry.pendingState ? text ?? PENDING_TEXT[state] : "";
  entry.pendingEl.dataset.state = entry.pendingState ?? "";
  const shownFor = PENDING_SHOWN_MS[entry.pendingState];
  if (shownFor) entry.pendingTimer = setTimeout(() => showPending(entry, null), shownFor);
}
