// Slider Sync board page: keeps the range inputs in step with everyone else on the board.
//
// Wire protocol v1 (see docs/protocol.md):
//   server -> client  board:state, slider:update(s), board:presence, slider:hands
//   client -> server  slider:set {id, value, base_version?} with an ack; slider:grab / slider:release {id}
//
// This module starts the page and wires the socket's events and the page's listeners to the
// modules under board/ (plain ES modules, no build step), which depend on each other in this
// order, with no cycle:
//   page.js        the page's elements, the slider entries and the shared mutable state (`page`)
//   format.js      numbers as people read them
//   status.js      the connection status, the message line, presence
//   touch.js       a finger on a slider: scroll (up or down), slide (sideways) or tap
//   entries.js     one entry per slider, and how it is shown (newer versions only; the thumb the
//                  person is moving is never yanked away)
//   hands.js       who is moving which slider
//   sending.js     the person's values on their way: pacing, acks, retries, conflicts, base_version
//   presets.js     listing, recalling and saving presets, and fades
//   receiving.js   board:state and slider:update(s) (a new connection's state replaces ours;
//                  server text only through textContent)
//   connection.js  transports, connect, disconnect, refusals, retries
// Each module states at its top the rules it keeps.

import { onConnect, onConnectError, onDisconnect, readTransports } from "./board/connection.js";
import { makeEntry, showOutput } from "./board/entries.js";
import { showHands } from "./board/hands.js";
import {
  CLIENT_ID,
  boardSlug,
  listEl,
  page,
  presetListEl,
  presetSaveEl,
  sliders,
} from "./board/page.js";
import { onFade, recallPreset, savePreset } from "./board/presets.js";
import { onBoardState, onSliderUpdate } from "./board/receiving.js";
import { flushAll, listenTo, release } from "./board/sending.js";
import { setPresence, setStatus, showMessage } from "./board/status.js";

presetListEl.addEventListener("click", (event) => {
  const button = event.target.closest("button.preset");
  if (button && page.canEdit) recallPreset(button.dataset.preset); // refused there if offline
});
presetSaveEl.addEventListener("submit", savePreset);

// --- Start ------------------------------------------------------------------------------------

for (const container of listEl.querySelectorAll(".slider[data-slider-id]")) {
  const entry = listenTo(makeEntry(container));
  if (!entry.input) continue;
  sliders.set(entry.id, entry);
  showOutput(entry, Number(entry.input.value));
}
page.canEdit = !Array.from(sliders.values()).some((entry) => entry.input.disabled);

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

page.socket = window.io({
  transports: readTransports(),
  // Fall back to long-polling when WebSockets cannot get through (a proxy without Upgrade).
  tryAllTransports: true,
  auth: { board: boardSlug, client: CLIENT_ID },
});
// For the browser tests (tests/test_browser.py), which reach the page's own socket through it:
// to cut its link (`socket.io.engine.close()`), to shorten its reconnection delays, and to hand
// its `slider:update` listener a crafted update. The page itself never reads it.
window.sliderSync = { socket: page.socket };

const socket = page.socket;
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
    if (!page.awaitingState) flushAll();
  } else if (!page.refused) {
    setStatus("reconnecting");
    // An attempt begun while offline can hang until it times out (20 s): start afresh now.
    socket.disconnect();
    socket.connect();
  }
});
setStatus(navigator.onLine ? "connecting" : "offline");
