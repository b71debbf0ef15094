// Presets: the board's saved values under a name. The page lists them (names with textContent
// only, invariant 7), recalls one at once or with a fade, saves the current values as one, and
// reports how a fade went.
//
// Rules this module keeps:
// - Nothing is overwritten without asking: a save under a taken name (the server compares names
//   ignoring case) shows a question in the page (never window.confirm) and is sent again with
//   `overwrite: true` only if the person says so.
// - Preset actions are not queued: while the page cannot send (offline, reconnecting, waiting
//   for the board's state) a recall or a save is refused with a message, and nothing is sent
//   later. A recall half a minute late could undo what the room did meanwhile.
// - A recall says what it could not take as saved: sliders removed since, values fitted to a
//   slider's range or step as it is now.

import { formatValue, isFiniteNumber } from "./format.js";
import { ACK_TIMEOUT_MS } from "./sending.js";
import {
  canSend,
  noPresetsEl,
  page,
  presetFadeEl,
  presetListEl,
  presetNameEl,
  sliders,
} from "./page.js";
import { clearMessage, showMessage } from "./status.js";

const confirmEl = document.getElementById("preset-confirm");
const confirmTextEl = document.getElementById("preset-confirm-text");
const replaceEl = document.getElementById("preset-replace");
const keepEl = document.getElementById("preset-keep");

let fadeNote = null; // {preset, text}: what the recall that started the running fade reported
let fadeShown = null; // the preset whose "Fading to …" message is on show

export function showPresets(presets) {
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

export function recallPreset(name) {
  if (!canSend()) {
    showMessage(`Not connected: “${name}” was not recalled. Recall it again once the page is connected.`);
    return;
  }
  const fade = Number(presetFadeEl.value) || 0;
  page.socket.timeout(ACK_TIMEOUT_MS).emit("preset:recall", { name, fade }, (error, ack) => {
    if (error) {
      showMessage("The server did not answer; the preset may not have been recalled.");
    } else if (!ack || ack.ok !== true) {
      showMessage(ack?.message ?? "The preset could not be recalled.");
    } else {
      const recalled = typeof ack.name === "string" ? ack.name : name;
      const note = recallNote(ack);
      if (fade > 0) {
        fadeNote = note ? { preset: recalled, text: note } : null;
        if (note && fadeShown === recalled) showFading(recalled);
      } else {
        showMessage(note ? `Recalled “${recalled}”. ${note}` : `Recalled “${recalled}”.`, {
          kind: note ? "warning" : "success",
        });
      }
    }
  });
}

/** What a recall's ack says it could not take as saved, in words ("" when all went as saved). */
function recallNote(ack) {
  const parts = [];
  const skipped = Array.isArray(ack.skipped) ? ack.skipped.filter((id) => typeof id === "string") : [];
  if (skipped.length) parts.push(`Skipped ${skipped.join(", ")}: no longer on the board.`);
  const adjusted = Array.isArray(ack.adjusted)
    ? ack.adjusted.filter((a) => a && typeof a.id === "string" && isFiniteNumber(a.value))
    : [];
  if (adjusted.length) {
    const fitted = adjusted.map((a) => {
      const entry = sliders.get(a.id);
      if (!entry) return `${a.id} ${a.value}`;
      const saved = isFiniteNumber(a.saved) ? `${formatValue(entry, a.saved)} → ` : "";
      return `${entry.label.textContent} ${saved}${formatValue(entry, a.value)}`;
    });
    parts.push(`Fitted to the sliders as they are now: ${fitted.join(", ")}.`);
  }
  return parts.join(" ");
}

export function savePreset(event) {
  event.preventDefault();
  const name = presetNameEl.value.trim();
  if (!name) return;
  sendSave(name, false);
}

function sendSave(name, overwrite) {
  hideConfirm();
  if (!canSend()) {
    // The name stays in the field, to save again once connected.
    showMessage(`Not connected: “${name}” was not saved. Save it again once the page is connected.`);
    return;
  }
  page.socket.timeout(ACK_TIMEOUT_MS).emit("preset:save", { name, overwrite }, (error, ack) => {
    if (error) {
      showMessage("The server did not answer; the preset may not have been saved.");
    } else if (ack?.ok === true) {
      presetNameEl.value = "";
      showMessage(ack.created === false ? `Replaced the preset “${ack.name}”.` : `Saved the preset “${ack.name}”.`, {
        kind: "success",
      });
    } else if (ack?.error === "preset_exists" && !overwrite) {
      askToReplace(name, typeof ack.name === "string" ? ack.name : name);
    } else {
      showMessage(ack?.message ?? "The preset could not be saved.");
    }
  });
}

/** The in-page question before replacing the preset `existing` with a save named `name`. */
function askToReplace(name, existing) {
  clearMessage(); // an earlier "Saved …" would read as if this save had happened
  confirmTextEl.textContent = `There is a preset “${existing}” already. Replace it with the current values?`;
  replaceEl.textContent = `Replace “${existing}”`;
  replaceEl.onclick = () => sendSave(name, true);
  confirmEl.hidden = false;
  keepEl.focus(); // the safe answer first: Enter keeps the preset
}

function hideConfirm() {
  confirmEl.hidden = true;
  replaceEl.onclick = null;
}

keepEl.addEventListener("click", () => {
  hideConfirm();
  presetNameEl.focus();
});
// A question about another name than the one in the field would answer the wrong thing.
presetNameEl.addEventListener("input", hideConfirm);

function showFading(preset) {
  fadeShown = preset;
  const note = fadeNote?.preset === preset ? ` ${fadeNote.text}` : "";
  showMessage(`Fading to “${preset}”…${note}`, { sticky: true });
}

export function onFade(fade) {
  if (!fade || typeof fade.preset !== "string") return;
  if (fade.state === "running") {
    if (fadeNote?.preset !== fade.preset) fadeNote = null; // someone else's fade
    showFading(fade.preset);
    return;
  }
  const note = fadeNote?.preset === fade.preset ? ` ${fadeNote.text}` : "";
  fadeNote = null;
  fadeShown = null;
  if (fade.state === "done") showMessage(`Recalled “${fade.preset}”.${note}`, { kind: note ? "warning" : "success" });
  else showMessage(`The fade to “${fade.preset}” stopped: someone moved a slider.`);
}
