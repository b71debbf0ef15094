// The socket's life as the page sees it: which transports to use, and what happens when the
// connection opens, drops, or is refused (the status shown, values to send again, when to retry).
//
// Rules this module keeps:
// - The status says what the page knows: "Offline" or "Reconnecting…" only while the server
//   cannot be reached; a server that answers and refuses the page is shown as such, with its
//   reason ("Board removed" when there is no such board any more: the page was served with it).
// - Refusals that may pass (the server cannot reach its database, too many connections from
//   this address) are tried again, later each time; the others are final.

import { showHands } from "./hands.js";
import { messageEl, page, presenceCountEl, presenceLabelEl, sliders, statusEl } from "./page.js";
import { cancelFlush, noteCutOff } from "./sending.js";
import { clearMessage, setStatus, showMessage, showMessageParts } from "./status.js";

const SERVER_DISCONNECT_RETRY_MS = [2000, 5000, 10000, 30000];
// Refusals that may pass: tried again after SERVER_DISCONNECT_RETRY_MS.
const PASSING_REFUSALS = new Set(["unavailable", "too_many_connections"]);

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
    noteCutOff(entry);
  }
  if (reason === "io server disconnect") {
    // The server closed this connection on purpose (the board was removed, or it could not read
    // it). Socket.IO does not retry these; try again later, the server will say if the board
    // is gone.
    setStatus("reconnecting");
    retryLater();
  } else if (page.socket.active) {
    setStatus("reconnecting");
  } else {
    setStatus("offline");
  }
}

/** Connect again after a delay that grows with each server disconnect or refusal in a row. */
function retryLater() {
  const delay =
    SERVER_DISCONNECT_RETRY_MS[Math.min(page.serverDisconnects, SERVER_DISCONNECT_RETRY_MS.length - 1)];
  page.serverDisconnects += 1;
  clearTimeout(serverRetryTimer);
  serverRetryTimer = setTimeout(() => {
    if (!page.socket.connected && !page.refused) page.socket.connect();
  }, delay);
}

export function onConnectError(error) {
  const code = error && error.data && typeof error.data === "object" ? error.data.code : undefined;
  const text = error && typeof error.message === "string" && error.message
    ? error.message
    : "The server refused the connection.";
  if (code === "unknown_board") {
    // This page was served with the board, so it was removed (or its address changed) since.
    page.refused = true;
    setStatus("removed");
    const index = document.querySelector("a.brand")?.getAttribute("href") || "/";
    showMessageParts(
      ["This board was removed (or its address changed). ", { text: "See the boards", href: index }, "."],
      { sticky: true, kind: "error" },
    );
    messageEl.dataset.sticky = "1";
  } else if (PASSING_REFUSALS.has(code)) {
    // The server is up but cannot take the page now: say why, and try again later.
    setStatus("refused");
    showMessage(text, { sticky: true });
    messageEl.dataset.sticky = "1";
    retryLater();
  } else if (code !== undefined || !page.socket.active) {
    // Refused by the server (a board for signed-in users, a bad request): it will not get
    // better by retrying.
    page.refused = true;
    setStatus("refused");
    showMessage(text, { sticky: true, kind: "error" });
    messageEl.dataset.sticky = "1";
  } else {
    setStatus(statusEl.dataset.state === "connecting" ? "connecting" : "reconnecting");
  }
}
