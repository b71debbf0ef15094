// The socket's life as the page sees it: which transports to use, and what happens when the
// connection opens, drops, or is refused (the status shown, values to send again, when to retry).

import { showHands } from "./hands.js";
import { messageEl, page, presenceCountEl, presenceLabelEl, sliders, statusEl } from "./page.js";
import { cancelFlush } from "./sending.js";
import { clearMessage, setStatus, showMessage } from "./status.js";

const SERVER_DISCONNECT_RETRY_MS = [2000, 5000, 10000, 30000];

let serverRetryTimer = null; // the next attempt after the server closed the connection on purpose

/** The transports the server allows (its `socketio-transports` JSON script), else both. */
export function readTransports() {
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

export function onConnect() {
  clearTimeout(serverRetryTimer);
  page.refused = false;
  // A new connection: forget every held version, so its board:state replaces our state.
  for (const entry of sliders.values()) entry.version = null;
  page.awaitingState = true;
  setStatus("connected");
  if (messageEl.dataset.sticky) {
    delete messageEl.dataset.sticky;
    clearMessage();
  }
}

export function onDisconnect(reason) {
  page.epoch += 1;
  page.awaitingState = true;
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
      SERVER_DISCONNECT_RETRY_MS[Math.min(page.serverDisconnects, SERVER_DISCONNECT_RETRY_MS.length - 1)];
    page.serverDisconnects += 1;
    setStatus("reconnecting");
    clearTimeout(serverRetryTimer);
    serverRetryTimer = setTimeout(() => {
      if (!page.socket.connected && !page.refused) page.socket.connect();
    }, delay);
  } else if (page.socket.active) {
    setStatus("reconnecting");
  } else {
    setStatus("offline");
  }
}

export function onConnectError(error) {
  const code = error && error.data && typeof error.data === "object" ? error.data.code : undefined;
  if (code !== undefined || !page.socket.active) {
    // Refused by the server (unknown or forbidden board, bad request): it will not get better
    // by retrying.
    page.refused = true;
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
