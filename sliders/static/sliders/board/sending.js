// The person's values on their way to the server: what they choose while moving a slider, at
// most one set per slider per animation frame and a few on their way at once, the acks, values
// sent again after a lost ack or a refusal, and what the page may send at all (`setCanEdit`).
//
// Rules this module keeps:
// - A value that goes out after the page was cut off (chosen while it could not send, or a set
//   whose ack was lost) carries the version it was based on (`base_version`): the server refuses
//   it with `conflict` if someone else changed the slider meanwhile, and the page shows theirs.
//   A live set carries the version the page held when the person chose the value and when that
//   was (`made_at`, the server's clock): the server lets the later of two people's live sets win,
//   unless one arrives much later than this connection's sets usually do (held up in the network,
//   or waiting here behind MAX_SETS_IN_FLIGHT); that one is held to its base too.
// - A value chosen while the page is cut off is visible as such under its slider ("Waiting to
//   send"), and so is what became of it after the reconnect ("Sent", or "Not applied" when
//   someone else changed the slider meanwhile); when every such value went through, the page
//   says so once.

import { acceptServerValue, isInteracting, render, showOutput, showPending } from "./entries.js";
import { grab, ungrab } from "./hands.js";
import {
  canSend,
  page,
  presetListEl,
  presetSaveEl,
  presetsEl,
  readOnlyEl,
  sliders,
} from "./page.js";
import { showMessage } from "./status.js";
import { followTouches, touchHolds } from "./touch.js";

const SEND_INTERVAL_MS = 17; // at most ~60 sets per second per slider (the server allows 60/s)
export const ACK_TIMEOUT_MS = 10000;
// Sets of one slider on their way at once. On a slow link the person's latest value waits here
// (replaced by each newer one) instead of queueing behind older ones in the network.
const MAX_SETS_IN_FLIGHT = 3;
const RATE_LIMIT_RETRY_MS = 250;
const HOLD_KEYS = new Set([
  "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End",
]);

// Values chosen while cut off and sent since the reconnect: did any of them not go through?
let cutOffRound = { sent: 0, refused: 0 };

export function setCanEdit(value) {
  page.canEdit = Boolean(value);
  for (const entry of sliders.values()) entry.input.disabled = !page.canEdit;
  for (const button of presetListEl.querySelectorAll("button")) button.disabled = !page.canEdit;
  presetSaveEl.hidden = !page.canEdit;
  presetsEl.hidden = !page.canEdit && presetListEl.children.length === 0;
  readOnlyEl.hidden = page.canEdit;
  if (!page.canEdit) {
    // Nothing the person chose can be stored: drop it and show the board's values.
    for (const entry of sliders.values()) {
      if (entry.pendingState === "waiting" || entry.pendingState === "sending") {
        showPending(entry, "refused", "Not applied: you may not move it now");
      }
      entry.pending = null;
      entry.base = null;
      entry.chosen = null;
      cancelFlush(entry);
      render(entry);
    }
  }
}

/** Make the entry follow the person's input: the values they choose, and their hand on it. */
export function listenTo(entry) {
  const { input } = entry;
  input.addEventListener("input", () => onInput(entry));
  input.addEventListener("change", () => onChange(entry));
  input.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "touch") return; // touch.js decides what a finger does
    entry.pointerDown = true;
    grab(entry);
  });
  followTouches(entry, {
    start() {
      entry.pointerDown = true;
      grab(entry);
    },
    move(value) {
      if (!page.canEdit) return;
      showOutput(entry, value);
      choose(entry, value);
      scheduleFlush(entry);
    },
    end() {
      release(entry);
    },
    tap(value) {
      if (!page.canEdit) return;
      showOutput(entry, value);
      choose(entry, value);
      flushNow(entry);
      render(entry);
    },
  });
  input.addEventListener("keydown", (event) => {
    if (!HOLD_KEYS.has(event.key)) return;
    entry.keyHeld = true;
    if (event.repeat) grab(entry); // a key held down, not a single step
  });
  input.addEventListener("keyup", (event) => {
    if (HOLD_KEYS.has(event.key)) release(entry);
  });
  input.addEventListener("blur", () => release(entry));
  return entry;
}

export function release(entry) {
  if (!isInteracting(entry)) return;
  entry.pointerDown = false;
  entry.keyHeld = false;
  if (entry.pending !== null) flushNow(entry);
  ungrab(entry);
  render(entry);
}

function onInput(entry) {
  if (!page.canEdit || touchHolds(entry)) return;
  const value = Number(entry.input.value);
  showOutput(entry, value);
  choose(entry, value);
  scheduleFlush(entry);
}

function onChange(entry) {
  if (!page.canEdit || touchHolds(entry)) return;
  const value = Number(entry.input.value);
  showOutput(entry, value);
  if (entry.pending === null && value === entry.lastSentValue) return;
  choose(entry, value);
  flushNow(entry);
}

/** The person chose `value`: based on what they saw, when they saw it (for a live set), and
 * held to that base however it goes out if the page cannot send now. */
function choose(entry, value) {
  entry.pending = value;
  entry.chosen = { seen: entry.seenVersion, at: serverNow() };
  if (!canSend()) {
    if (entry.base === null) entry.base = entry.seenVersion;
    if (entry.pendingState !== "waiting") showPending(entry, "waiting");
  } else if (entry.pendingState === "sent" || entry.pendingState === "refused") {
    showPending(entry, null); // the person has moved on
  }
}

/** This answer tells what became of the value: it is the last set sent, and none waits. */
function outcomeDue(entry, seq) {
  return entry.pendingState === "sending" && seq === entry.seq && entry.pending === null;
}

/** The connection dropped: a value that must now wait for the next one says so. */
export function noteCutOff(entry) {
  if (entry.pending !== null && entry.pendingState !== "waiting") showPending(entry, "waiting");
}

/** What became of a value chosen while cut off (`ok`: stored); once all are answered, a
 * round in which all went through is reported once. */
function noteOutcome(entry, ok, text) {
  showPending(entry, ok ? "sent" : "refused", text);
  cutOffRound[ok ? "sent" : "refused"] += 1;
  const open = Array.from(sliders.values()).some(
    (other) => other.pendingState === "waiting" || other.pendingState === "sending",
  );
  if (open) return;
  if (cutOffRound.refused === 0 && cutOffRound.sent > 0) {
    const what = cutOffRound.sent === 1 ? "The change" : "The changes";
    showMessage(`${what} you made while disconnected went through.`, { kind: "success" });
  }
  cutOffRound = { sent: 0, refused: 0 };
}

/** The server's clock now (ms since the Unix epoch), as this connection estimates it; or null. */
function serverNow() {
  const offset = page.serverClockOffset;
  return offset === null ? null : Math.round(performance.now() + offset);
}

export function cancelFlush(entry) {
  clearTimeout(entry.flushTimer);
  if (entry.flushFrame !== null) cancelAnimationFrame(entry.flushFrame);
  entry.flushTimer = null;
  entry.flushFrame = null;
}

/** Send the pending value at the next frame, but no sooner than SEND_INTERVAL_MS after the last. */
function scheduleFlush(entry) {
  if (!canSend() || entry.flushTimer !== null || entry.flushFrame !== null) return;
  const wait = Math.max(0, entry.lastSentAt + SEND_INTERVAL_MS - performance.now());
  const onFrame = () => {
    entry.flushFrame = null;
    flushNow(entry);
  };
  if (document.hidden) {
    // Hidden pages get no animation frames; a timer still lets the final value go out.
    entry.flushTimer = setTimeout(() => {
      entry.flushTimer = null;
      flushNow(entry);
    }, Math.max(wait, SEND_INTERVAL_MS));
  } else if (wait > 0) {
    entry.flushTimer = setTimeout(() => {
      entry.flushTimer = null;
      entry.flushFrame = requestAnimationFrame(onFrame);
    }, wait);
  } else {
    entry.flushFrame = requestAnimationFrame(onFrame);
  }
}

function flushNow(entry) {
  cancelFlush(entry);
  if (entry.pending === null || !canSend() || !page.canEdit) return;
  if (entry.inflight >= MAX_SETS_IN_FLIGHT) return; // it goes when an answer comes back
  send(entry, entry.pending);
}

export function flushAll() {
  for (const entry of sliders.values()) {
    if (entry.pending !== null) flushNow(entry);
  }
}

function send(entry, value) {
  const base = entry.base;
  const payload = { id: entry.id, value };
  // What the person saw when they chose the value (a value sent again keeps its own).
  const chosen = entry.chosen ?? { seen: entry.seenVersion, at: serverNow() };
  if (Number.isInteger(base)) {
    payload.base_version = base; // chosen while cut off, or sent again: held to its base
  } else if (Number.isInteger(chosen.seen) && Number.isInteger(chosen.at)) {
    // A live set: the later set wins, unless it arrives much later than this connection's
    // sets usually do (a link that froze without closing); then it is held to its base too.
    payload.base_version = chosen.seen;
    payload.made_at = chosen.at;
  }
  entry.pending = null;
  entry.base = null;
  entry.chosen = null;
  entry.lastSentChosen = chosen;
  // Sent again after a lost ack, this value is based on what the page held when it was chosen.
  entry.lastSentBase = base ?? chosen.seen;
  entry.lastSentAt = performance.now();
  entry.lastSentValue = value;
  entry.inflight += 1;
  entry.seq += 1;
  const seq = entry.seq;
  const sentEpoch = page.epoch;
  // A value chosen while cut off (or sent again for it): this set's answer says what became of it.
  const reports = entry.pendingState === "waiting" || entry.pendingState === "sending";
  if (reports) showPending(entry, "sending");
  page.socket.timeout(ACK_TIMEOUT_MS).emit("slider:set", payload, (error, ack) => {
    if (sentEpoch !== page.epoch || sliders.get(entry.id) !== entry) return;
    entry.inflight = Math.max(0, entry.inflight - 1);
    if (error) {
      onLostAck(entry, seq, value);
    } else if (ack && ack.ok === true) {
      acceptServerValue(entry, ack.value, ack.version);
      if (reports && outcomeDue(entry, seq)) noteOutcome(entry, true);
    } else {
      onRefusedSet(entry, seq, ack, base, "made_at" in payload);
      // (rate_limited: the same value goes out again shortly, and its answer will tell.)
      if (reports && outcomeDue(entry, seq) && ack?.error !== "rate_limited") {
        noteOutcome(entry, false, ack?.error === "conflict" ? undefined : "Not applied");
      }
    }
    render(entry);
    if (entry.pending !== null) scheduleFlush(entry); // a value held back by MAX_SETS_IN_FLIGHT
  });
}

/** No ack in time: if that was the person's last value, send it again (on its old base). */
function onLostAck(entry, seq, value) {
  if (seq !== entry.seq || entry.pending !== null) return;
  entry.pending = value;
  entry.base = entry.lastSentBase;
  if (canSend()) scheduleFlush(entry);
  else noteCutOff(entry);
}

function onRefusedSet(entry, seq, ack, base, live) {
  const code = ack && typeof ack.error === "string" ? ack.error : "bad_request";
  const message =
    ack && typeof ack.message === "string" && ack.message ? ack.message : "The change was not accepted.";
  if (code === "conflict") {
    // Someone else changed the slider while this page was cut off: theirs stays, and shows.
    acceptServerValue(entry, ack.value, ack.version);
    // Only if no newer set went out since: that one's value must still be sent again if its
    // ack is lost.
    if (seq === entry.seq) entry.lastSentValue = null;
    const when = live ? "held up on its way to the server" : "made while disconnected";
    showMessage(
      `Your change to “${entry.label.textContent}” ${when} was not applied: ` +
        "someone changed it meanwhile.",
    );
    return;
  }
  showMessage(message);
  if (code === "rate_limited") {
    // Make sure the final value still lands: try the person's latest value again shortly,
    // unless a newer set went out since (its own ack takes care of it).
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = null;
      if (seq !== entry.seq || entry.pending !== null || !page.canEdit) return;
      entry.pending = entry.lastSentValue;
      // The same choice as before: a live set made when it was made (so waiting here counts
      // as delay), or, if the page was cut off meanwhile, held to the base it was chosen on.
      entry.chosen = entry.lastSentChosen;
      entry.base = base ?? (canSend() ? null : entry.lastSentBase);
      flushNow(entry);
      render(entry);
    }, RATE_LIMIT_RETRY_MS);
  } else if (code === "forbidden") {
    setCanEdit(false);
  }
}
