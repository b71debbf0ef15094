// Freshness on a slider that several draggers move at once (loadgen.mjs --sliders).
//
// With one dragger per slider, values only grow, so a receiver holding a value at least as large
// as a send's holds that send or a newer one. With several draggers that no longer follows: two
// sets that cross on their way are stored in the order the server handles them, each with its
// own version (docs/protocol.md), so a value sent later may be stored before one sent earlier
// and be overwritten by it. What the server promises is the version order, and freshness follows
// it: a send's version is the one its ack carries (for a set superseded while it waited, the
// newer set's), and a receiver holds that send or a newer one from the moment it holds that
// version or a greater one. Values sent on one slider are still all different (one counter per
// slider in the generator), so an update also tells which send it stores, for a send whose ack
// never came.
//
// Each receiver's versions of the slider, with when it got them, are kept during the drag; the
// samples are computed once it is over, when every send's version is known.

import { Column } from "./samples.mjs";

const UNKNOWN = Number.NaN; // no ack yet, and no update carried the value
const REFUSED = -1; // the ack was an error: nothing was stored

/** The first index of the ascending `versions` (length `n`) holding `version` or more, or n. */
function firstAtLeast(versions, n, version) {
  let low = 0;
  let high = n;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (versions[mid] < version) low = mid + 1;
    else high = mid;
  }
  return low;
}

export class SharedTrack {
  /**
   * @param {string} id the slider's id
   * @param {number} start the first value to send (one above the value held at the start)
   * @param {number} capacity sends expected (the columns grow past it)
   */
  constructor(id, start, capacity) {
    this.id = id;
    this.shared = true;
    this.dragger = -1; // several: each send names its own in `senders`
    this.start = start;
    this.values = new Column(capacity);
    this.times = new Column(capacity);
    this.seconds = new Column(capacity);
    this.senders = new Column(capacity);
    this.versions = new Column(capacity); // per send: its version, UNKNOWN or REFUSED
    this.highest = -1; // the greatest version of the slider seen by any client or ack
    this.timelines = new Map(); // receiver index -> {versions, times} as it got them
  }

  /** A client connected when the drag began; its versions of the slider are kept from now. */
  addReceiver(ci) {
    this.timelines.set(ci, { versions: new Column(64), times: new Column(64) });
  }

  /** The next value to send: one above the previous send's, whoever sent it. */
  nextValue() {
    return this.start + this.values.length;
  }

  /** Record a send; its index in the track is its ack id. */
  sent(ci, value, sentAt, second) {
    this.values.push(value);
    this.times.push(sentAt);
    this.seconds.push(second);
    this.senders.push(ci);
    this.versions.push(UNKNOWN);
  }

  /** Client `ci` now holds `update` ({value, version}), a greater version than it held. */
  held(ci, update, now) {
    const timeline = this.timelines.get(ci);
    if (timeline !== undefined) {
      timeline.versions.push(update.version);
      timeline.times.push(now);
    }
    if (update.version > this.highest) this.highest = update.version;
    const i = update.value - this.start;
    if (Number.isInteger(i) && i >= 0 && i < this.versions.length) {
      if (Number.isNaN(this.versions.data[i])) this.versions.data[i] = update.version;
    }
  }

  /** The ack of send `id`: {ok: true, value, version} or an error. */
  acked(id, ack) {
    if (ack && ack.ok === true) {
      this.versions.data[id] = ack.version;
      if (ack.version > this.highest) this.highest = ack.version;
    } else {
      this.versions.data[id] = REFUSED;
    }
  }

  /** Receivers not holding the greatest version seen; `heldVersion(ci)` is what ci holds. */
  stale(heldVersion) {
    let stale = 0;
    for (const ci of this.timelines.keys()) if (heldVersion(ci) < this.highest) stale++;
    return stale;
  }

  /**
   * Freshness of every stored send for every receiver but its sender: `sample(second, ms)` for
   * each (send, receiver) pair delivered. Returns the pairs never delivered, the sends whose
   * version never became known (no ack, and no client got the value: not samples), and the
   * sends stored before an earlier send (a version below one given to an earlier send: where
   * "a greater value is newer" would have been wrong).
   */
  freshness(sample) {
    let undelivered = 0;
    let unresolved = 0;
    let reordered = 0;
    let greatest = -1;
    const receivers = [...this.timelines.entries()];
    for (let i = 0; i < this.values.length; i++) {
      const version = this.versions.data[i];
      if (version === REFUSED) continue;
      if (Number.isNaN(version)) {
        unresolved++;
        continue;
      }
      if (version < greatest) reordered++;
      greatest = Math.max(greatest, version);
      const sender = this.senders.data[i];
      const sentAt = this.times.data[i];
      const second = this.seconds.data[i];
      for (const [ci, timeline] of receivers) {
        if (ci === sender) continue;
        const at = firstAtLeast(timeline.versions.data, timeline.versions.length, version);
        if (at < timeline.versions.length) {
          sample(second, timeline.times.data[at] - sentAt);
        } else {
          undelivered++;
        }
      }
    }
    return { undelivered, unresolved, reordered };
  }
}
