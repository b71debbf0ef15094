// Slider Sync board index: how many people are on each board, kept current while it is open.
const REFRESH_MS = 3000;

const list = document.getElementById("board-list");

function describe(count) {
  return count === 0 ? "nobody here" : `${count} here`;
}

async function refresh() {
  try {
    const response = await fetch(list.dataset.presenceUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const { boards } = await response.json();
    for (const el of list.querySelectorAll("[data-presence-for]")) {
      const count = boards?.[el.dataset.presenceFor];
      el.textContent = Number.isInteger(count) ? describe(count) : "";
    }
  } catch {
    // Offline or restarting: keep the last counts and try again at the next tick.
  }
}

if (list) {
  refresh();
  setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
}
