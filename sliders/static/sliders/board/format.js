// Numbers as people read them. Slider.format_value in Python (sliders/models.py) agrees.

export function isFiniteNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// Decimal places in the shortest text of a number (0.25 -> 2, 100 -> 0, 1.5e-7 -> 8,
// 1.5e+21 -> 0), counted from the mantissa and the exponent as decimals_of in Python does.
function decimalsOf(number) {
  if (!Number.isFinite(number)) return 0;
  const [mantissa, exponent = "0"] = String(Math.abs(number)).split("e");
  const dot = mantissa.indexOf(".");
  const fraction = dot === -1 ? 0 : mantissa.length - dot - 1;
  return Math.max(0, fraction - Number(exponent));
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
