// Numbers as people read them. Slider.format_value in Python (sliders/models.py) agrees.

export function isFiniteNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function decimalsOf(number) {
  if (!Number.isFinite(number)) return 0;
  const text = String(number);
  const exp = text.match(/e-(\d+)$/);
  if (exp) return Number(exp[1]);
  const dot = text.indexOf(".");
  return dot === -1 ? 0 : text.length - dot - 1;
}

/**
 * The value as people read it ("-12.5 dB", "75 %"): the slider's precision, or as many
 * decimals as the step grid has (max 6), then its unit. Slider.format_value in Python agrees.
 */
export function formatValue(entry, value) {
  const decimals =
    entry.precision ?? Math.min(6, Math.max(decimalsOf(entry.step), decimalsOf(entry.min)));
  let text = Number(value).toFixed(decimals);
  if (text.startsWith("-") && Number(text) === 0) text = text.slice(1); // no "-0.0"
  return entry.unit ? `${text} ${entry.unit}` : text;
}
