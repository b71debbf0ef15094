// What the page tells the person besides the values: the connection status, the message line
// and how many people are here.
//
// Rules this module keeps:
// - Messages float over the page (board.css): showing one moves nothing on the board.
// - A message has a kind, and looks it: "warning" (the default: something did not happen),
//   "error" (the page cannot go on, e.g. the board was removed) or "success" (it worked).
// - A page that stays cut off says, after a while, for how long and what the person can do.

import { boardEl, messageEl, page, presenceCountEl, presenceLabelEl, statusEl } from "./page.js";

const MESSAGE_MS = 4000;
const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  removed: "Board removed", // the server is up, and says there is no such board (any more)
  refused: "Not connected", // the server is up, and refuses this page (it says why)
};
const KINDS = new Set(["warning", "error", "success"]);
// How long a page may be cut off before it says so in words, and the durations it then names
// (seconds): the message changes, and is read out, only when the next one is reached.
const CUT_OFF_HINT_MS = 10000;
const CUT_OFF_STEPS_S = [10, 20, 30, 60, 120, 300, 600, 1800, 3600];

let messageTimer = null; // hides a message that is not sticky, MESSAGE_MS after it was shown
let cutOffSince = null; // performance.now() when the page last stopped being connected
let cutOffTimer = null;
let cutOffShown = null; // the last duration named in a cut-off message (seconds)

/**
 * Show `text` on the message line. `sticky`: until replaced or cleared (else MESSAGE_MS);
 * `kind`: "warning" (default), "error" or "success". Text only (never HTML).
 */
export function showMessage(text, { sticky = false, kind = "warning" } = {}) {
  clearTimeout(messageTimer);
  messageEl.textContent = text;
  messageEl.dataset.kind = KINDS.has(kind) ? kind : "warning";
  delete messageEl.dataset.cutOff;
  messageEl.hidden = false;
  if (!sticky) messageTimer = setTimeout(clearMessage, MESSAGE_MS);
}

/** Show a message made of text and links: `parts` are strings and {text, href} objects. */
export function showMessageParts(parts, { sticky = false, kind = "warning" } = {}) {
  showMessage("", { sticky, kind });
  for (const part of parts) {
    if (typeof part === "string") {
      messageEl.append(part);
    } else {
      const link = document.createElement("a");
      link.href = part.href;
      link.textContent = part.text;
      messageEl.append(link);
    }
  }
}

export function clearMessage() {
  clearTimeout(messageTimer);
  messageEl.hidden = true;
  messageEl.textContent = "";
  delete messageEl.dataset.cutOff;
}

export function setStatus(state) {
  if (!(state in STATUS_TEXT)) state = "offline";
  const serverAnswered = state === "removed" || state === "refused";
  if (!serverAnswered && !navigator.onLine) state = "offline";
  statusEl.dataset.state = state;
  statusEl.textContent = STATUS_TEXT[state];
  boardEl.classList.toggle("disconnected", state !== "connected");
  followCutOff(state);
}

export function setPresence(clients) {
  if (!Number.isInteger(clients) || clients < 0) return;
  presenceCountEl.textContent = String(clients);
  presenceLabelEl.textContent = clients === 1 ? "person here" : "people here";
}

// --- How long the page has been cut off -------------------------------------------------------

function followCutOff(state) {
  if (state === "reconnecting" || state === "offline") {
    if (cutOffSince === null) cutOffSince = performance.now();
    if (cutOffTimer === null) cutOffTimer = setInterval(showCutOff, 1000);
    showCutOff();
    return;
  }
  // Connected, or the server answered (and the page says what it said): no hint.
  cutOffSince = null;
  cutOffShown = null;
  clearInterval(cutOffTimer);
  cutOffTimer = null;
  if (messageEl.dataset.cutOff) clearMessage();
}

function showCutOff() {
  if (cutOffSince === null) return;
  const elapsed = performance.now() - cutOffSince;
  if (elapsed < CUT_OFF_HINT_MS) return;
  const seconds = CUT_OFF_STEPS_S.filter((step) => step * 1000 <= elapsed).pop();
  const offline = statusEl.dataset.state === "offline";
  // Shown already, or another message is up (e.g. a conflict): leave it until the time named
  // moves on.
  if (seconds === cutOffShown && !messageEl.hidden) return;
  cutOffShown = seconds;
  const kept = page.canEdit ? " Moves you make meanwhile are kept and sent when it is back." : "";
  showMessage(
    offline
      ? `This device has been offline for ${duration(seconds)}: check its network ` +
          `connection (Wi-Fi, mobile data).${kept}`
      : `The server has been unreachable for ${duration(seconds)}: check that the address is ` +
          `right, or ask whoever runs this board.${kept}`,
    { sticky: true },
  );
  messageEl.dataset.cutOff = "1";
}

/** "20 s", "2 min", "1 h". */
function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}
