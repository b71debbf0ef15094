// Presets: the board's saved values under a name. The page lists them (names with textContent
// only, invariant 7), recalls one at once or with a fade, saves the current values as one, and
// reports how a fade went.

import { ACK_TIMEOUT_MS } from "./sending.js";
import { noPresetsEl, page, presetFadeEl, presetListEl, presetNameEl } from "./page.js";
import { showMessage } from "./status.js";

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
  const fade = Number(presetFadeEl.value) || 0;
  page.socket.timeout(ACK_TIMEOUT_MS).emit("preset:recall", { name, fade }, (error, ack) => {
    if (error) showMessage("The server did not answer; the preset may not have been recalled.");
    else if (!ack || ack.ok !== true) showMessage(ack?.message ?? "The preset could not be recalled.");
  });
}

export function savePreset(event) {
  event.preventDefault();
  const name = presetNameEl.value.trim();
  if (!name || !page.socket.connected) return;
  page.socket.timeout(ACK_TIMEOUT_MS).emit("preset:save", { name }, (error, ack) => {
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

export function onFade(fade) {
  if (!fade || typeof fade.preset !== "string") return;
  if (fade.state === "running") showMessage(`Fading to “${fade.preset}”…`, { sticky: true });
  else if (fade.state === "done") showMessage(`Recalled “${fade.preset}”.`);
  else showMessage(`The fade to “${fade.preset}” stopped: someone moved a slider.`);
}
