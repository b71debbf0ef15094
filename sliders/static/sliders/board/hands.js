// Hands on controls: this page tells the others which slider the person is moving, and shows
// who else is moving one. Names go in with textContent only (invariant 7).

import { page } from "./page.js";

const GRAB_RENEW_MS = 2000; // the server forgets a hand GRAB_TIMEOUT (6 s) after its last grab

/** Tell the others this page is moving the slider (renewed until it lets go). */
export function grab(entry) {
  if (!page.canEdit || !page.socket.connected || entry.grabTimer !== null) return;
  page.socket.emit("slider:grab", { id: entry.id });
  entry.grabTimer = setInterval(() => {
    if (page.socket.connected) page.socket.emit("slider:grab", { id: entry.id });
  }, GRAB_RENEW_MS);
}

export function ungrab(entry) {
  if (entry.grabTimer === null) return;
  clearInterval(entry.grabTimer);
  entry.grabTimer = null;
  if (page.socket.connected) page.socket.emit("slider:release", { id: entry.id });
}

/** Show who else is moving a slider ("someone" for people who are not signed in). */
export function showHands(entry, hands) {
  const others = Array.isArray(hands)
    ? hands.filter((h) => h && typeof h.by === "string" && h.hand !== page.myHand)
    : [];
  // Empty, the line keeps its place (board.css): showing a hand moves nothing on the page.
  entry.handsEl.textContent = others.length ? `Being moved by ${others.map((h) => h.by).join(", ")}` : "";
  entry.handsEl.hidden = false;
  entry.container.classList.toggle("held", others.length > 0);
}
