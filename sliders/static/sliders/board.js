// Slider Sync board page: keeps the range inputs in step with everyone else on the board.
//
// Wire protocol v1 (see docs/protocol.md):
//   server -> client  board:state, slider:update(s), board:presence, slider:hands
//   client -> server  slider:set {id, value, base_version?} with an ack; slider:grab / slider:release {id}
//
// Rules this file keeps:
// - Never show an older value after a newer one: a server value is applied only when its version
//   is greater than the one held; every new connection forgets the held versions, so its first
//   board:state replaces the state completely (invariant 3).
// - Text from the server (board and slider names) only ever goes into the page via textContent
//   (invariant 7).
// - The thumb the person is moving is never yanked away: server values for it are stored and
//   shown when they let go, if they are still the newest.
// - A value that goes out after the page was cut off (chosen while it could not send, or a set
//   whose ack was lost) carries the version it was based on (`base_version`): the server refuses
//   it with `conflict` if someone else changed the slider meanwhile, and the page shows theirs.
//   A live set carries the version the page held when the person chose the value and when that
//   was (`made_at`, the server's clock): the server lets the later of two people's live sets win,
//   unless one arrives much later than this connection's sets usually do (held up in the network,
//   or waiting here behind MAX_SETS_IN_FLIGHT); that one is held to its base too.

const SEND_INTERVAL_MS = 17; // at most ~60 sets per second per slider (the server allows 60/s)
const ACK_TIMEOUT_MS = 10000;
// Sets of one slider on their way at once. On a slow link the person's latest value waits here
// (replaced by each newer one) instead of queueing behind older ones in the network.
const MAX_SETS_IN_FLIGHT = 3;
const RATE_LIMIT_RETRY_MS = 250;
const MESSAGE_MS = 4000;
const SERVER_DISCONNECT_RETRY_MS = [2000, 5000, 10000, 30000];
// A slider someone else moves is read out once it has been still this long (not frame by frame).
const ANNOUNCE_AFTER_MS = 800;
const GRAB_RENEW_MS = 2000; // the server forgets a hand GRAB_TIMEOUT (6 s) after its last grab
const HOLD_KEYS = new Set([
  "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End",
]);
const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

const boardEl = document.getElementById("board");
const listEl = document.getElementById("sliders");
const boardSlug = boardEl.dataset.board;
const statusEl = document.getElementById("connection-status");
const presenceCountEl = document.getElementById("presence-count");
const presenceLabelEl = document.getElementById("presence-label");
const messageEl = document.getElementById("message");
const announcerEl = document.getElementById("announcer");
const presetsEl = document.getElementById("presets");
const presetListEl = document.getElementById("preset-list");
const noPresetsEl = document.getElementById("no-presets");
const presetFadeEl = document.getElementById("preset-fade");
const presetSaveEl = document.getElementById("preset-save");
const presetNameEl = document.getElementById("preset-name");
const nameEl = document.getElementById("board-name");
const readOnlyEl = document.getElementById("read-only");
const noSlidersEl = document.getElementById("no-sliders");

/** Slider entries by id (slug), in no particular order; the DOM holds the display order. */
const sliders = new Map();
let canEdit = true;
let awaitingState = true; // true from each `connect` until that connection's first board:state
let epoch = 0; // bumped on every disconnect; acks from an older connection are ignored
let refused = false; // the server refused the connection (unknown board, ...): do not retry
let serverDisconnects = 0;
let serverRetryTimer = null;
let messageTimer = null;
let socket = null;
let myHand = null; // this connection's hand id (from board:state): our own hands are not shown
// The server's clock minus performance.now(), in ms, from this connection's board:states (null:
// none yet). Each estimate is early by the state's trip here, so the largest one is the best.
let serverClockOffset = null;
// This page's id for the server (auth.client), the same across its reconnects, so that its own
// sets from before a dropped connection never count as someone else's change. Random, from
// getRandomValues (crypto.randomUUID needs a secure context; boards are served on plain LANs).
const CLIENT_ID = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) =>
  byte.toString(16).padStart(2, "0"),
).join("");

// --- Small helpers ----------------------------------------------------------------------------

function readTransports() {
  const el = document.getElementById("socketio-transports");
  try {
    const value = el ? JSON.parse(el.textContent) : null;
    if (Array.isArray(value) && value.length && value.every((t) => typeof t === "string")) {
      return value;
    }
  } catch (error) {
    // fall through to the default
  }
  return ["websocket", "polling"];
}

function isFiniteNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function decimalsOf(number) {
  if (!Number.isFinite(number)) return 0;
  const text = String(number);
  const exp = text.match(/e-(\d+)$/);
  if (exp) return Number(exp[1]);
  const dot = text.indexOf(".");
  return dot === -1 ? 0 : text.length - dot - 1;
}

/**
 * The value as people read it ("-12.5 dB", "75 %"): the slider's precision, or as many
 * decimals as the step grid has (max 6), then its unit. Slider.format_value in Python agrees.
 */
function formatValue(entry, value) {
  const decimals =
    entry.precision ?? Math.min(6, Math.max(decimalsOf(entry.step), decimalsOf(entry.min)));
  let text = Number(value).toFixed(decimals);
  if (text.startsWith("-") && Number(text) === 0) text = text.slice(1); // no "-0.0"
  return entry.unit ? `${text} ${entry.unit}` : text;
}

function showMessage(text, { sticky = false } = {}) {
  clearTimeout(messageTimer);
  messageEl.textContent = text;
  messageEl.hidden = false;
  if (!sticky) {
    messageTimer = setTimeout(() => {
      messageEl.hidden = true;
      messageEl.textContent = "";
    }, MESSAGE_MS);
  }
}

function clearMessage() {
  clearTimeout(messageTimer);
  messageEl.hidden = true;
  messageEl.textContent = "";
}

function setStatus(state) {
  if (state !== "offline" && !navigator.onLine) state = "offline";
  statusEl.dataset.state = state;
  statusEl.textContent = STATUS_TEXT[state];
  boardEl.classList.toggle("disconnected", state !== "connected");
}

function setPresence(clients) {
  if (!Number.isInteger(clients) || clients < 0) return;
  presenceCountEl.textContent = String(clients);
  presenceLabelEl.textContent = clients === 1 ? "person here" : "people here";
}

function setCanEdit(value) {
  canEdit = Boolean(value);
  for (const entry of sliders.values()) entry.input.disabled = !canEdit;
  for (const button of presetListEl.querySelectorAll("button")) button.disabled = !canEdit;
  presetSaveEl.hidden = !canEdit;
  presetsEl.hidden = !canEdit && presetListEl.children.length === 0;
  readOnlyEl.hidden = canEdit;
  if (!canEdit) {
    // Nothing the person chose can be stored: drop it and show the board's values.
    for (const entry of sliders.values()) {
      entry.pending = null;
      entry.base = null;
      entry.chosen = null;
      cancelFlush(entry);
      render(entry);
    }
  }
}

/** Sets may go out: the socket is open, its first board:state is applied, the browser is online. */
function canSend() {
  return socket !== null && socket.connected && !awaitingState && navigator.onLine;
}

// --- Slider entries ---------------------------------------------------------------------------

function createSliderElement(id) {
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
  input.setAttribute("aria-describedby", `hands-${id}`);
  const hands = document.createElement("p");
  hands.className = "hands";
  hands.id = `hands-${id}`;
  hands.hidden = true;
  container.append(label, output, input, hands);
  return container;
}

function makeEntry(container) {
  const input = container.querySelector('input[type="range"]');
  const entry = {
    id: container.dataset.sliderId,
    container,
    input,
    output: container.querySelector("output"),
    label: container.querySelector("label"),
    handsEl: container.querySelector(".hands"),
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
  };
  const version = Number(input.dataset.version);
  if (input.dataset.version !== undefined && Number.isInteger(version)) {
    entry.version = version;
    entry.seenVersion = version;
    entry.serverValue = Number(input.value);
  }
  input.addEventListener("input", () => onInput(entry));
  input.addEventListener("change", () => onChange(entry));
  input.addEventListener("pointerdown", () => {
    entry.pointerDown = true;
    grab(entry);
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

function isInteracting(entry) {
  return entry.pointerDown || entry.keyHeld;
}

/** Show the newest server value, unless the person's own value is still on its way. */
function render(entry) {
  if (isInteracting(entry) || entry.pending !== null || entry.inflight > 0) return;
  if (entry.serverValue === null) return;
  showValue(entry, entry.serverValue);
}

function showValue(entry, value) {
  entry.input.value = String(value);
  showOutput(entry, value);
}

/** The number next to the slider, and how far the track is filled. */
function showOutput(entry, value) {
  const text = formatValue(entry, value);
  entry.output.textContent = text;
  entry.input.setAttribute("aria-valuetext", text);
  const fraction = (value - entry.min) / (entry.max - entry.min);
  const percent = Number.isFinite(fraction) ? Math.min(100, Math.max(0, fraction * 100)) : 0;
  entry.input.style.setProperty("--fill", `${percent}%`);
}

/** A value from the server (update, ack or state): keep it only if it is newer than what we hold. */
function acceptServerValue(entry, value, version) {
  if (!isFiniteNumber(value) || !Number.isInteger(version)) return false;
  if (entry.version !== null && version <= entry.version) return false;
  entry.version = version;
  entry.seenVersion = version;
  entry.serverValue = value;
  entry.input.dataset.version = String(version);
  return true;
}

function release(entry) {
  if (!isInteracting(entry)) return;
  entry.pointerDown = false;
  entry.keyHeld = false;
  if (entry.pending !== null) flushNow(entry);
  ungrab(entry);
  render(entry);
}

// --- Presets ----------------------------------------------------------------------------------

function showPresets(presets) {
  const buttons = [];
  for (const preset of presets) {
    if (!preset || typeof preset.name !== "string") continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "preset";
    button.dataset.preset = preset.name;
    button.textContent = preset.name;
    buttons.push(button);
  }
  presetListEl.replaceChildren(...buttons);
  noPresetsEl.hidden = buttons.length > 0;
}

function recallPreset(name) {
  const fade = Number(presetFadeEl.value) || 0;
  socket.timeout(ACK_TIMEOUT_MS).emit("preset:recall", { name, fade }, (error, ack) => {
    if (error) showMessage("The server did not answer; the preset may not have been recalled.");
    else if (!ack || ack.ok !== true) showMessage(ack?.message ?? "The preset could not be recalled.");
  });
}

function savePreset(event) {
  event.preventDefault();
  const name = presetNameEl.value.trim();
  if (!name || !socket.connected) return;
  socket.timeout(ACK_TIMEOUT_MS).emit("preset:save", { name }, (error, ack) => {
    if (error) {
      showMessage("The server did not answer; the preset may not have been saved.");
    } else if (ack?.ok === true) {
      presetNameEl.value = "";
      showMessage(`Saved the preset “${ack.name}”.`);
    } else {
      showMessage(ack?.message ?? "The preset could not be saved.");
    }
  });
}

function onFade(fade) {
  if (!fade || typeof fade.preset !== "string") return;
  if (fade.state === "running") showMessage(`Fading to “${fade.preset}”…`, { sticky: true });
  else if (fade.state === "done") showMessage(`Recalled “${fade.preset}”.`);
  else showMessage(`The fade to “${fade.preset}” stopped: someone moved a slider.`);
}

presetListEl.addEventListener("click", (event) => {
  const button = event.target.closest("button.preset");
  if (button && canEdit && socket.connected) recallPreset(button.dataset.preset);
});
presetSaveEl.addEventListener("submit", savePreset);

// --- Hands on controls ------------------------------------------------------------------------

/** Tell the others this page is moving the slider (renewed until it lets go). */
function grab(entry) {
  if (!canEdit || !socket.connected || entry.grabTimer !== null) return;
  socket.emit("slider:grab", { id: entry.id });
  entry.grabTimer = setInterval(() => {
    if (socket.connected) socket.emit("slider:grab", { id: entry.id });
  }, GRAB_RENEW_MS);
}

function ungrab(entry) {
  if (entry.grabTimer === null) return;
  clearInterval(entry.grabTimer);
  entry.grabTimer = null;
  if (socket.connected) socket.emit("slider:release", { id: entry.id });
}

/** Show who else is moving a slider ("someone" for people who are not signed in). */
function showHands(entry, hands) {
  const others = Array.isArray(hands)
    ? hands.filter((h) => h && typeof h.by === "string" && h.hand !== myHand)
    : [];
  entry.handsEl.textContent = others.length ? `Being moved by ${others.map((h) => h.by).join(", ")}` : "";
  entry.handsEl.hidden = others.length === 0;
  entry.container.classList.toggle("held", others.length > 0);
}

function removeEntry(entry) {
  ungrab(entry);
  clearTimeout(entry.announceTimer);
  cancelFlush(entry);
  clearTimeout(entry.retryTimer);
  entry.container.remove();
  sliders.delete(entry.id);
}

// --- Sending ----------------------------------------------------------------------------------

function onInput(entry) {
  if (!canEdit) return;
  const value = Number(entry.input.value);
  showOutput(entry, value);
  choose(entry, value);
  scheduleFlush(entry);
}

function onChange(entry) {
  if (!canEdit) return;
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
  if (!canSend() && entry.base === null) entry.base = entry.seenVersion;
}

/** The server's clock now (ms since the Unix epoch), as this connection estimates it; or null. */
function serverNow() {
  return serverClockOffset === null ? null : Math.round(performance.now() + serverClockOffset);
}

function cancelFlush(entry) {
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
  if (entry.pending === null || !canSend() || !canEdit) return;
  if (entry.inflight >= MAX_SETS_IN_FLIGHT) return; // it goes when an answer comes back
  send(entry, entry.pending);
}

function flushAll() {
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
  const sentEpoch = epoch;
  socket.timeout(ACK_TIMEOUT_MS).emit("slider:set", payload, (error, ack) => {
    if (sentEpoch !== epoch || sliders.get(entry.id) !== entry) return;
    entry.inflight = Math.max(0, entry.inflight - 1);
    if (error) {
      onLostAck(entry, seq, value);
    } else if (ack && ack.ok === true) {
      acceptServerValue(entry, ack.value, ack.version);
    } else {
      onRefusedSet(entry, seq, ack, base, "made_at" in payload);
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
      if (seq !== entry.seq || entry.pending !== null || !canEdit) return;
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

// --- Receiving --------------------------------------------------------------------------------

function onBoardState(state) {
  if (!state || typeof state !== "object" || !Array.isArray(state.sliders)) return;
  const firstState = awaitingState;
  if (isFiniteNumber(state.server_time)) {
    const offset = state.server_time - performance.now();
    if (firstState || serverClockOffset === null || offset > serverClockOffset) {
      serverClockOffset = offset; // a new connection may be another server: start afresh
    }
  }
  if (typeof state.name === "string") {
    nameEl.textContent = state.name;
    document.title = `${state.name} · Slider Sync`;
  }
  setPresence(state.clients);
  if (typeof state.hand === "string") myHand = state.hand;

  const seen = new Set();
  let index = 0;
  for (const item of state.sliders) {
    if (!item || typeof item.id !== "string" || seen.has(item.id)) continue;
    seen.add(item.id);
    let entry = sliders.get(item.id);
    if (!entry) {
      entry = makeEntry(createSliderElement(item.id));
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
  awaitingState = false;
  if (firstState) {
    serverDisconnects = 0;
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

function onSliderUpdate(update) {
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

// --- Connection -------------------------------------------------------------------------------

function onConnect() {
  clearTimeout(serverRetryTimer);
  refused = false;
  // A new connection: forget every held version, so its board:state replaces our state.
  for (const entry of sliders.values()) entry.version = null;
  awaitingState = true;
  setStatus("connected");
  if (messageEl.dataset.sticky) {
    delete messageEl.dataset.sticky;
    clearMessage();
  }
}

function onDisconnect(reason) {
  epoch += 1;
  awaitingState = true;
  // Who is here is unknown until the next board:state.
  presenceCountEl.textContent = "–";
  presenceLabelEl.textContent = "here";
  for (const entry of sliders.values()) {
    cancelFlush(entry);
    // The server drops this connection's hands, and others' hands are unknown until board:state.
    clearInterval(entry.grabTimer);
    entry.grabTimer = null;
    showHands(entry, []);
    if (entry.inflight > 0 && entry.pending === null && entry.lastSentValue !== null) {
      // The last set's ack is lost with the connection: send that value again after reconnecting.
      entry.pending = entry.lastSentValue;
    }
    if (entry.pending !== null && entry.base === null) {
      // It goes out after the cut, so only over what the page saw before it.
      entry.base =
        entry.chosen?.seen ?? (entry.inflight > 0 ? entry.lastSentBase : entry.seenVersion);
    }
    entry.inflight = 0;
  }
  if (reason === "io server disconnect") {
    // The server closed this connection on purpose (the board was removed, or it could not read
    // it). Socket.IO does not retry these; try again later, the server will say if the board
    // is gone.
    const delay =
      SERVER_DISCONNECT_RETRY_MS[Math.min(serverDisconnects, SERVER_DISCONNECT_RETRY_MS.length - 1)];
    serverDisconnects += 1;
    setStatus("reconnecting");
    clearTimeout(serverRetryTimer);
    serverRetryTimer = setTimeout(() => {
      if (!socket.connected && !refused) socket.connect();
    }, delay);
  } else if (socket.active) {
    setStatus("reconnecting");
  } else {
    setStatus("offline");
  }
}

function onConnectError(error) {
  const code = error && error.data && typeof error.data === "object" ? error.data.code : undefined;
  if (code !== undefined || !socket.active) {
    // Refused by the server (unknown or forbidden board, bad request): it will not get better
    // by retrying.
    refused = true;
    setStatus("offline");
    const text = error && typeof error.message === "string" && error.message
      ? error.message
      : "The server refused the connection.";
    showMessage(text, { sticky: true });
    messageEl.dataset.sticky = "1";
  } else {
    setStatus(statusEl.dataset.state === "connecting" ? "connecting" : "reconnecting");
  }
}

// --- Start ------------------------------------------------------------------------------------

for (const container of listEl.querySelectorAll(".slider[data-slider-id]")) {
  const entry = makeEntry(container);
  if (!entry.input) continue;
  sliders.set(entry.id, entry);
  showOutput(entry, Number(entry.input.value));
}
canEdit = !Array.from(sliders.values()).some((entry) => entry.input.disabled);

// Pointer releases can happen outside the input (dragging off the thumb).
for (const type of ["pointerup", "pointercancel"]) {
  window.addEventListener(type, () => {
    for (const entry of sliders.values()) if (entry.pointerDown) release(entry);
  }, true);
}

if (typeof window.io !== "function") {
  setStatus("offline");
  showMessage("The live connection could not be loaded. Reload the page to try again.", { sticky: true });
  throw new Error("Socket.IO client (window.io) is missing");
}

socket = window.io({
  transports: readTransports(),
  // Fall back to long-polling when WebSockets cannot get through (a proxy without Upgrade).
  tryAllTransports: true,
  auth: { board: boardSlug, client: CLIENT_ID },
});
window.sliderSync = { socket };

socket.on("connect", onConnect);
socket.on("disconnect", onDisconnect);
socket.on("connect_error", onConnectError);
socket.on("board:state", onBoardState);
socket.on("slider:update", onSliderUpdate);
socket.on("slider:updates", (updates) => {
  if (Array.isArray(updates)) updates.forEach(onSliderUpdate);
});
socket.on("board:fade", onFade);
socket.on("slider:hands", (data) => {
  const entry = data && typeof data.id === "string" ? sliders.get(data.id) : undefined;
  if (entry) showHands(entry, data.hands);
});
socket.on("board:presence", (data) => {
  if (data && typeof data === "object") setPresence(data.clients);
});
socket.io.on("reconnect_attempt", () => setStatus("reconnecting"));

window.addEventListener("offline", () => setStatus("offline"));
// A page that goes to the background gets no animation frames: send what is scheduled now.
document.addEventListener("visibilitychange", () => {
  if (document.hidden) flushAll();
});
window.addEventListener("online", () => {
  if (socket.connected) {
    setStatus("connected");
    if (!awaitingState) flushAll();
  } else if (!refused) {
    setStatus("reconnecting");
    // An attempt begun while offline can hang until it times out (20 s): start afresh now.
    socket.disconnect();
    socket.connect();
  }
});
setStatus(navigator.onLine ? "connecting" : "offline");
