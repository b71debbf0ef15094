// Sample storage for the load generator (loadgen.mjs): append-only float lists in chunks,
// nearest-rank percentiles over them, and a growable Float64Array.

const CHUNK = 1 << 16;

/**
 * An append-only list of float samples in chunks of up to CHUNK (millions of samples fit). The
 * first chunk starts small and doubles, so the thousands of per-second lists of a long soak run
 * (scripts/soak) do not each reserve a full chunk.
 */
export class Samples {
  constructor() {
    this.chunks = [];
    this.current = new Float32Array(1024);
    this.fill = 0;
    this.length = 0;
  }

  push(x) {
    if (this.fill === this.current.length) {
      if (this.current.length < CHUNK) {
        const bigger = new Float32Array(this.current.length * 2);
        bigger.set(this.current);
        this.current = bigger;
      } else {
        this.chunks.push(this.current);
        this.current = new Float32Array(CHUNK);
        this.fill = 0;
      }
    }
    this.current[this.fill++] = x;
    this.length++;
  }

  /** Copy every sample into `out` starting at `offset`; returns the next offset. */
  copyInto(out, offset) {
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    out.set(this.current.subarray(0, this.fill), offset);
    return offset + this.fill;
  }
}

export function round(x) {
  return x === null || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000;
}

/** Nearest-rank percentiles of one or more Samples, plus max and count. */
export function summarize(stores, qs = [0.5, 0.9, 0.99]) {
  const list = Array.isArray(stores) ? stores : [stores];
  const n = list.reduce((sum, s) => sum + s.length, 0);
  const result = { count: n };
  if (n === 0) {
    for (const q of qs) result[`p${Math.round(q * 100)}`] = null;
    result.max = null;
    return result;
  }
  const all = new Float32Array(n);
  let offset = 0;
  for (const s of list) offset = s.copyInto(all, offset);
  all.sort();
  for (const q of qs) {
    result[`p${Math.round(q * 100)}`] = round(all[Math.max(0, Math.ceil(q * n) - 1)]);
  }
  result.max = round(all[n - 1]);
  return result;
}

/** A growable Float64Array. */
export class Column {
  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
    this.length = 0;
  }

  push(x) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = x;
  }
}
