// What the page tells the person besides the values: the connection status, the message line
// and how many people are here.

import { boardEl, messageEl, presenceCountEl, presenceLabelEl, statusEl } from "./page.js";

const MESSAGE_MS = 4000;
const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

let messageTimer = null; // hides a message that is not sticky, MESSAGE_MS after it was shown

export function showMessage(text, { sticky = false } = {}) {
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

export function clearMessage() {
  clearTimeout(messageTimer);
  messageEl.hidden = true;
  messageEl.textContent = "";
}

export function setStatus(state) {
  if (state !== "offline" && !navigator.onLine) state = "offline";
  statusEl.dataset.state = state;
  statusEl.textContent = STATUS_TEXT[state];
  boardEl.classList.toggle("disconnected", state !== "connected");
}

export function setPresence(clients) {
  if (!Number.isInteger(clients) || clients < 0) return;
  presenceCountEl.textContent = String(clients);
  presenceLabelEl.textContent = clients === 1 ? "person here" : "people here";
}
