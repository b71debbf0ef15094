// The admin's Copy buttons: a button with data-copy="<text>" puts the text on the clipboard and
// says "Copied" for a moment. The Clipboard API needs a secure context (HTTPS or localhost); on
// plain HTTP over the LAN the page falls back to copying a selected, off-screen text area.
"use strict";

function copyBySelection(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.left = "-9999px";
  document.body.append(area);
  area.select();
  try {
    return document.execCommand("copy");
  } finally {
    area.remove();
  }
}

async function copy(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: try the old way below.
    }
  }
  return copyBySelection(text);
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  event.preventDefault();
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = (await copy(button.dataset.copy)) ? "Copied" : "Select the link and copy it";
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => {
    button.textContent = label;
  }, 2000);
});
