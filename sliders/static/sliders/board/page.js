// What the board page's modules share: the page's elements, the slider entries, and the state
// that more than one module reads or changes, in one object (`page`), so that every piece of
// shared state is visible here rather than scattered through the modules.

export const boardEl = document.getElementById("board");
export const listEl = document.getElementById("sliders");
export const boardSlug = boardEl.dataset.board;
export const statusEl = document.getElementById("connection-status");
export const presenceCountEl = document.getElementById("presence-count");
export const presenceLabelEl = document.getElementById("presence-label");
export const messageEl = document.getElementById("message");
export const announcerEl = document.getElementById("announcer");
export const presetsEl = document.getElementById("presets");
export const presetListEl = document.getElementById("preset-list");
export const noPresetsEl = document.getElementById("no-presets");
export const presetFadeEl = document.getElementById("preset-fade");
export const presetSaveEl = document.getElementById("preset-save");
export const presetNameEl = document.getElementById("preset-name");
export const nameEl = document.getElementById("board-name");
export const readOnlyEl = document.getElementById("read-only");
export const noSlidersEl = document.getElementById("no-sliders");

/** Slider entries by id (slug), in no particular order; the DOM holds the display order. */
export const sliders = new Map();

/** The page's shared mutable state. */
export const page = {
  canEdit: true,
  awaitingState: true, // true from each `connect` until that connection's first board:state
  epoch: 0, // bumped on every disconnect; acks from an older connection are ignored
  refused: false, // the server refused the connection (unknown board, ...): do not retry
  serverDisconnects: 0, // disconnects by the server in a row, for the delay before trying again
  socket: null, // the Socket.IO client socket (null until board.js makes it)
  myHand: null, // this connection's hand id (from board:state): our own hands are not shown
  // The server's clock minus performance.now(), in ms, from this connection's board:states (null:
  // none yet). Each estimate is early by the state's trip here, so the largest one is the best.
  serverClockOffset: null,
};

// This page's id for the server (auth.client), the same across its reconnects, so that its own
// sets from before a dropped connection never count as someone else's change. Random, from
// getRandomValues (crypto.randomUUID needs a secure context; boards are served on plain LANs).
export const CLIENT_ID = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) =>
  byte.toString(16).padStart(2, "0"),
).join("");

/** Sets may go out: the socket is open, its first board:state is applied, the browser is online. */
export function canSend() {
  return page.socket !== null && page.socket.connected && !page.awaitingState && navigator.onLine;
}
