// Load generator for the Slider Sync wire protocol (docs/protocol.md).
//
// Opens N websocket clients on one board, lets S of them drag sliders at R sets per second for
// T seconds (one slider each, or K sliders shared: dragger i on slider i % K), and measures
// connect time, ack latency and freshness (how long until every other client holds each value
// sent or a newer one). Prints one JSON object on stdout; progress and the phase markers read
// by run.py go to stderr.
//
// It speaks Engine.IO v4 / Socket.IO v5 itself on top of `ws` (websocket transport only, no
// socket.io-client), so that a received update costs one string check and one JSON.parse:
// the generator has to stay far from its own CPU limit while the server is saturated.

import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { Column, Samples, round, summarize } from "./samples.mjs";
import { SharedTrack } from "./shared.mjs";

const USAGE = `usage: node loadgen.mjs --url http://127.0.0.1:8000 [--board bench] [--clients 100]
  [--draggers 1] [--sliders K] [--rate 30] [--duration 10] [--settle 5] [--pause 1]
  [--connect-only] [--idle 0] [--connect-rate 0] [--connect-timeout 30] [--deflate]`;

const { values: opts } = parseArgs({
  options: {
    // One server, or several processes of one (comma-separated): the draggers connect to the
    // first, the other clients to each in turn.
    url: { type: "string", default: "http://127.0.0.1:8000" },
    board: { type: "string", default: "bench" },
    clients: { type: "string", default: "100" },
    draggers: { type: "string", default: "1" },
    // How many sliders the draggers move (dragger i moves slider i % K); default: one each.
    sliders: { type: "string" },
    rate: { type: "string", default: "30" },
    duration: { type: "string", default: "10" },
    settle: { type: "string", default: "5" },
    // Quiet time between the connect phase and the drag (presence messages die down).
    pause: { type: "string", default: "1" },
    "connect-only": { type: "boolean", default: false },
    // With --connect-only: seconds to keep every client connected and quiet before closing.
    idle: { type: "string", default: "0" },
    // Clients started per second (0: all at once). A crowd arriving over some seconds.
    "connect-rate": { type: "string", default: "0" },
    "connect-timeout": { type: "string", default: "30" },
    // Offer permessage-deflate like browsers do. Off by default: inflating every frame in the
    // generator would make it, not the server, the bottleneck.
    deflate: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (opts.help) {
  process.stderr.write(USAGE + "\n");
  process.exit(0);
}

const N = Number.parseInt(opts.clients, 10);
const S = Number.parseInt(opts.draggers, 10);
const K = opts.sliders === undefined ? S : Number.parseInt(opts.sliders, 10);
const RATE = Number(opts.rate);
const DURATION = Number(opts.duration);
const SETTLE_MS = Number(opts.settle) * 1000;
const PAUSE_MS = Number(opts.pause) * 1000;
const CONNECT_TIMEOUT_MS = Number(opts["connect-timeout"]) * 1000;
const CONNECT_ONLY = opts["connect-only"];
const IDLE_MS = Number(opts.idle) * 1000;
const CONNECT_RATE = Number(opts["connect-rate"]);
const AUTH = JSON.stringify({ board: opts.board });
const WS_URLS = opts.url.split(",").map((url) => {
  const base = new URL(url);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = "/socket.io/";
  base.search = "?EIO=4&transport=websocket";
  return base.toString();
});

/** Client i's server: the first for the draggers, then each in turn. */
function urlOf(index) {
  return index < S ? WS_URLS[0] : WS_URLS[(index - S) % WS_URLS.length];
}

const MAX_SLIDERS = 64; // per-client state is kept in flat typed arrays of this width

function log(message) {
  process.stderr.write(`[loadgen] ${message}\n`);
}

// run.py samples the server's CPU when it reads these lines.
function marker(name) {
  process.stderr.write(`@@BENCH ${name} ${performance.now().toFixed(3)}\n`);
}

// --- Shared state -------------------------------------------------------------------------

const sliderIndex = new Map(); // slider id -> column in the per-client arrays
let sliderIds = []; // in board order, from the first board:state
const heldVersion = new Float64Array(N * MAX_SLIDERS).fill(-1);
const heldValue = new Float64Array(N * MAX_SLIDERS);

// Freshness bookkeeping, for the dragged sliders only (tracks[si] is null for the others).
// A slider with one dragger: the sends in order (values strictly increase), and per receiver
// the index of its first send not yet delivered. A slider with several: a SharedTrack
// (shared.mjs), which follows versions instead.
const tracks = new Array(MAX_SLIDERS).fill(null);
const nextUndelivered = new Int32Array(N * MAX_SLIDERS);
const isReceiver = new Uint8Array(N); // connected when the drag started
const freshBySecond = []; // Samples per second of the drag in which the value was sent
const ackLatency = new Samples();
const ackErrors = {};
const sendLag = new Samples(); // how late each send left against its schedule (generator health)

let phaseStart = 0;
let dragStart = 0;
let counting = false; // count delivered messages (drag + settle)
let deliveredMessages = 0;
let deliveredUpdates = 0;
let disconnects = 0;
let acksReceived = 0;

function recordDelivery(ci, si, value, now) {
  const track = tracks[si];
  if (track === null || track.shared || !isReceiver[ci] || track.dragger === ci) return;
  const k = ci * MAX_SLIDERS + si;
  let i = nextUndelivered[k];
  const values = track.values.data;
  const times = track.times.data;
  const seconds = track.seconds.data;
  const count = track.values.length;
  while (i < count && values[i] <= value) {
    freshBySecond[seconds[i]].push(now - times[i]);
    i++;
  }
  nextUndelivered[k] = i;
}

/** Apply one {id, value, version}: a client keeps only a greater version (the protocol rule). */
function applyUpdate(ci, update, now, replace) {
  const si = sliderIndex.get(update.id);
  if (si === undefined) return;
  const k = ci * MAX_SLIDERS + si;
  if (!replace && !(update.version > heldVersion[k])) return;
  heldVersion[k] = update.version;
  heldValue[k] = update.value;
  const track = tracks[si];
  if (track !== null && track.shared) {
    track.held(ci, update, now);
  } else {
    recordDelivery(ci, si, update.value, now);
  }
}

function learnSliders(sliders) {
  if (sliderIds.length > 0) return;
  sliderIds = sliders.map((s) => s.id).slice(0, MAX_SLIDERS);
  sliderIds.forEach((id, i) => sliderIndex.set(id, i));
}

// --- Clients ------------------------------------------------------------------------------

let waitingForState = 0;
let onAllSettledConnect = null;
const connectFailures = { refused: {}, error: 0, closed: 0, timeout: 0 };

function connectFailed(client, reason, code) {
  if (client.ready || client.failed) return;
  client.failed = reason;
  if (reason === "refused") {
    connectFailures.refused[code] = (connectFailures.refused[code] || 0) + 1;
  } else {
    connectFailures[reason]++;
  }
  waitingForState--;
  if (waitingForState === 0 && onAllSettledConnect) onAllSettledConnect();
}

class Client {
  constructor(index, startedAt) {
    this.index = index;
    this.startedAt = startedAt;
    this.ready = false; // has its first board:state
    this.failed = null;
    this.closing = false;
    this.closed = false;
    this.connectMs = null;
    this.track = null; // the track this client drags, if it is a dragger
    this.wasReceiver = false; // connected when the drag began (stale counts it even if it drops)
    this.onClosed = null;
    this.ws = new WebSocket(urlOf(index), {
      perMessageDeflate: opts.deflate,
      skipUTF8Validation: true,
    });
    this.ws.on("message", (data) => this.onMessage(data.toString()));
    this.ws.on("error", () => connectFailed(this, "error"));
    this.ws.on("close", () => this.onClose());
  }

  onClose() {
    this.closed = true;
    if (!this.ready) {
      connectFailed(this, "closed");
    } else if (!this.closing) {
      disconnects++;
      isReceiver[this.index] = 0;
    }
    if (this.onClosed) this.onClosed();
  }

  onMessage(text) {
    const now = performance.now();
    const type = text.charCodeAt(0);
    if (type === 52 /* 4: message, a Socket.IO packet follows */) {
      const packet = text.charCodeAt(1);
      if (packet === 50 /* 2: event */) {
        this.onEvent(JSON.parse(text.slice(2)), now);
      } else if (packet === 51 /* 3: ack */) {
        this.onAck(text, now);
      } else if (packet === 52 /* 4: connect error */) {
        let code = "unknown";
        try {
          code = JSON.parse(text.slice(2))?.data?.code ?? "unknown";
        } catch {
          // keep "unknown"
        }
        connectFailed(this, "refused", code);
        this.closing = true;
        this.ws.close();
      } else if (packet === 49 /* 1: disconnect from the server */) {
        this.ws.close();
      }
      // 40 (connected) needs no action: the first board:state is what counts.
    } else if (type === 50 /* 2: ping */) {
      this.ws.send("3");
    } else if (type === 48 /* 0: open */) {
      this.ws.send("40" + AUTH);
    }
  }

  onEvent(packet, now) {
    const event = packet[0];
    const data = packet[1];
    if (counting) deliveredMessages++;
    if (event === "slider:update") {
      if (counting) deliveredUpdates++;
      applyUpdate(this.index, data, now, false);
    } else if (event === "slider:updates") {
      if (counting) deliveredUpdates += data.length;
      for (const update of data) applyUpdate(this.index, update, now, false);
    } else if (event === "board:state") {
      learnSliders(data.sliders);
      // The first state of a connection replaces everything; later ones obey versions.
      for (const slider of data.sliders) applyUpdate(this.index, slider, now, !this.ready);
      if (!this.ready && !this.failed) {
        this.ready = true;
        this.connectMs = now - this.startedAt;
        waitingForState--;
        if (waitingForState === 0 && onAllSettledConnect) onAllSettledConnect();
      }
    }
  }

  onAck(text, now) {
    const bracket = text.indexOf("[", 2);
    const id = Number.parseInt(text.slice(2, bracket), 10);
    const ack = JSON.parse(text.slice(bracket))[0];
    const track = this.track;
    if (track === null || !(id < track.times.length)) return;
    acksReceived++;
    if (track.shared) track.acked(id, ack);
    if (ack && ack.ok === true) {
      ackLatency.push(now - track.times.data[id]);
      // On a shared slider the ack is what the dragger holds, others' changes aside (the page
      // shows its own value; the server sends no update of it back).
      if (track.shared) applyUpdate(this.index, ack, now, false);
    } else {
      const code = (ack && ack.error) || "unknown";
      ackErrors[code] = (ackErrors[code] || 0) + 1;
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Phases -------------------------------------------------------------------------------

/**
 * Start every client, all at once or CONNECT_RATE a second, and wait until each has its first
 * board:state or failed. A client's connect time runs from its own start (all at once: the
 * phase's start).
 */
async function connectAll() {
  const pace = CONNECT_RATE > 0 ? `, ${CONNECT_RATE} a second` : "";
  log(`connecting ${N} clients to ${WS_URLS.join(", ")}${pace}`);
  marker("connect-start");
  phaseStart = performance.now();
  waitingForState = N;
  const done = new Promise((resolve) => {
    onAllSettledConnect = resolve;
  });
  const clients = [];
  const rampMs = CONNECT_RATE > 0 ? (N / CONNECT_RATE) * 1000 : 0;
  if (CONNECT_RATE > 0) {
    // Started on a schedule (client i at i / rate seconds), checked every 10 ms.
    await new Promise((resolve) => {
      const step = () => {
        const elapsed = (performance.now() - phaseStart) / 1000;
        const due = Math.min(N, Math.floor(elapsed * CONNECT_RATE) + 1);
        while (clients.length < due) clients.push(new Client(clients.length, performance.now()));
        if (clients.length < N) setTimeout(step, 10);
        else resolve();
      };
      step();
    });
  } else {
    for (let i = 0; i < N; i++) clients.push(new Client(i, phaseStart));
  }
  const timer = setTimeout(() => {
    for (const c of clients) {
      if (!c.ready && !c.failed) {
        connectFailed(c, "timeout");
        c.closing = true;
        c.ws.terminate();
      }
    }
  }, Math.max(0, phaseStart + rampMs + CONNECT_TIMEOUT_MS - performance.now()));
  await done;
  clearTimeout(timer);
  marker("connected");
  const times = new Samples();
  for (const c of clients) if (c.ready) times.push(c.connectMs);
  const summary = summarize(times, [0.5, 0.99]);
  const failed = N - summary.count;
  log(`connected ${summary.count}/${N} (p50 ${summary.p50} ms, p99 ${summary.p99} ms)`);
  return {
    clients,
    connect: {
      ok: summary.count,
      p50: summary.p50,
      p99: summary.p99,
      max: summary.max,
      failed,
      failures: connectFailures,
    },
  };
}

/** Every dragger sends on a fixed grid (start + phase + k/R), never a chain of timeouts. */
function drag(clients) {
  const period = 1000 / RATE;
  const perDragger = Math.round(RATE * DURATION);
  const seconds = Math.max(1, Math.ceil(DURATION));
  for (let s = 0; s < seconds; s++) freshBySecond.push(new Samples());

  // Dragger i moves slider i % K; a slider with more than one connected dragger is shared.
  const bySlider = new Map(); // slider index -> its connected draggers
  for (let i = 0; i < S; i++) {
    const client = clients[i];
    if (!client.ready || client.closed) {
      log(`dragger ${i} is not connected; it will not drag`);
      continue;
    }
    const si = i % K;
    if (!bySlider.has(si)) bySlider.set(si, []);
    bySlider.get(si).push(i);
  }
  const draggers = [];
  for (const [si, indexes] of bySlider) {
    const start = Math.max(...indexes.map((i) => heldValue[i * MAX_SLIDERS + si])) + 1;
    const capacity = perDragger * indexes.length + 16;
    const track =
      indexes.length > 1
        ? new SharedTrack(sliderIds[si], start, capacity)
        : {
            id: sliderIds[si],
            shared: false,
            dragger: indexes[0],
            start,
            values: new Column(capacity),
            times: new Column(capacity),
            seconds: new Column(capacity),
          };
    tracks[si] = track;
    for (const i of indexes) {
      clients[i].track = track;
      // Spread the draggers over one period, as people do not move in lockstep.
      draggers.push({ client: clients[i], track, phase: (i * period) / S, sent: 0 });
    }
  }
  if (draggers.length === 0) return Promise.resolve(null);

  for (const c of clients) {
    c.wasReceiver = c.ready && !c.closed;
    isReceiver[c.index] = c.wasReceiver ? 1 : 0; // cleared again if it drops
    if (!c.wasReceiver) continue;
    for (const track of tracks) if (track !== null && track.shared) track.addReceiver(c.index);
  }
  return new Promise((resolve) => {
    counting = true;
    dragStart = performance.now() + 1;
    marker("drag-start");
    const cpuAtStart = process.cpuUsage();
    let skipped = 0;

    const tick = () => {
      const now = performance.now();
      let next = Infinity;
      for (const d of draggers) {
        let due = dragStart + d.phase + d.sent * period;
        while (d.sent < perDragger && due <= now) {
          if (d.client.closed) {
            skipped++;
          } else {
            const track = d.track;
            // One counter per slider: values grow with every send, whoever drags.
            const value = track.start + track.values.length;
            const sentAt = performance.now();
            // The ack id is the index of the send in its track.
            const payload = `{"id":"${track.id}","value":${value}}`;
            d.client.ws.send(`42${track.values.length}["slider:set",${payload}]`);
            const second = Math.min(seconds - 1, Math.floor((sentAt - dragStart) / 1000));
            if (track.shared) {
              track.sent(d.client.index, value, sentAt, second);
            } else {
              track.values.push(value);
              track.times.push(sentAt);
              track.seconds.push(second);
            }
            sendLag.push(sentAt - due);
          }
          d.sent++;
          due = dragStart + d.phase + d.sent * period;
        }
        if (d.sent < perDragger) next = Math.min(next, due);
      }
      if (next === Infinity) {
        const wall = performance.now() - dragStart;
        const cpu = process.cpuUsage(cpuAtStart);
        marker("drag-end");
        resolve({
          wallMs: wall,
          cpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100,
          skipped,
          draggers: draggers.length,
        });
      } else {
        setTimeout(tick, Math.max(0, next - performance.now()));
      }
    };
    setTimeout(tick, Math.max(0, dragStart - performance.now()));
  });
}

/**
 * Stale (client, slider) pairs, and (value, client) pairs never delivered on the sliders with
 * one dragger (for shared ones, sharedFreshness counts those once the run is over).
 */
function countStale(clients) {
  let stale = 0;
  let undelivered = 0;
  for (let si = 0; si < MAX_SLIDERS; si++) {
    const track = tracks[si];
    if (track === null) continue;
    if (track.shared) {
      // Everyone connected when the drag began, its draggers too, must hold the last version.
      stale += track.stale((ci) => heldVersion[ci * MAX_SLIDERS + si]);
      continue;
    }
    const count = track.values.length;
    for (const c of clients) {
      // Everyone connected when the drag began, except the slider's own dragger. A client
      // that dropped during the run holds a stale value and counts here too.
      if (!c.ready || track.dragger === c.index || !c.wasReceiver) continue;
      const missing = count - nextUndelivered[c.index * MAX_SLIDERS + si];
      if (missing > 0) {
        stale++;
        undelivered += missing;
      }
    }
  }
  return { stale, undelivered };
}

/** Freshness samples of the shared sliders, now that every send's version is known. */
function sharedFreshness() {
  const totals = { undelivered: 0, unresolved: 0, reordered: 0 };
  for (const track of tracks) {
    if (track === null || !track.shared) continue;
    const counts = track.freshness((second, ms) => freshBySecond[second].push(ms));
    for (const key of Object.keys(totals)) totals[key] += counts[key];
  }
  return totals;
}

async function settle(clients) {
  const deadline = performance.now() + SETTLE_MS;
  const sends = tracks.reduce((sum, t) => sum + (t ? t.values.length : 0), 0);
  for (;;) {
    const { stale } = countStale(clients);
    if ((stale === 0 && acksReceived >= sends) || performance.now() >= deadline) break;
    await sleep(20);
  }
  counting = false;
  marker("settle-end");
}

async function closeAll(clients) {
  const open = clients.filter((c) => !c.closed);
  await Promise.race([
    Promise.all(
      open.map(
        (c) =>
          new Promise((resolve) => {
            c.closing = true;
            c.onClosed = resolve;
            c.ws.close();
          }),
      ),
    ),
    sleep(3000),
  ]);
  for (const c of clients) if (!c.closed) c.ws.terminate();
}

function finish(result, code = 0) {
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

async function main() {
  if (!(N > 0) || !(S >= 0) || !(K >= (S > 0 ? 1 : 0)) || !(RATE > 0) || !(DURATION > 0)) {
    process.stderr.write(USAGE + "\n");
    process.exit(2);
  }
  const sliders = Math.min(S, K);
  const base = { clients: N, draggers: S, sliders, rate: RATE, duration: DURATION };
  const { clients, connect } = await connectAll();
  if (connect.ok === 0) {
    log("no client connected");
    await closeAll(clients);
    finish({ ...base, connect, error: "no client connected" }, 2);
    return;
  }
  if (CONNECT_ONLY) {
    if (IDLE_MS > 0) {
      await sleep(IDLE_MS);
      marker("idle-end"); // run.py reads the server's memory here
    }
    await closeAll(clients);
    finish({ ...base, connect_only: true, connect, disconnects, generator: generatorStats(null) });
    return;
  }
  if (Math.min(S, K) > sliderIds.length) {
    log(`${Math.min(S, K)} sliders to drag, but the board has ${sliderIds.length}`);
    await closeAll(clients);
    finish({ ...base, connect, error: "more sliders to drag than the board has" }, 2);
    return;
  }

  await sleep(PAUSE_MS);
  const dragged = await drag(clients);
  if (dragged === null) {
    log("no dragger is connected");
    await closeAll(clients);
    finish({ ...base, connect, error: "no dragger connected" }, 2);
    return;
  }
  log(`drag done in ${dragged.wallMs.toFixed(0)} ms; settling`);
  await settle(clients);
  const windowMs = performance.now() - dragStart;
  const { stale, undelivered: undeliveredOnce } = countStale(clients);
  const shared = sharedFreshness();
  const undelivered = undeliveredOnce + shared.undelivered;
  const sends = tracks.reduce((sum, t) => sum + (t ? t.values.length : 0), 0);

  const fresh = summarize(freshBySecond, [0.5, 0.9, 0.99]);
  const first = summarize(freshBySecond[0], [0.99]);
  const last = summarize(freshBySecond[freshBySecond.length - 1], [0.99]);
  // p99 of the values sent in each minute of the drag (the last minute may be partial).
  const byMinute = [];
  for (let s = 0; s < freshBySecond.length; s += 60) {
    byMinute.push(summarize(freshBySecond.slice(s, s + 60), [0.99]).p99);
  }
  const ack = summarize(ackLatency, [0.5, 0.9, 0.99]);
  const lag = summarize(sendLag, [0.99]);
  const result = {
    ...base,
    connect,
    sends,
    ack: {
      count: ack.count,
      p50: ack.p50,
      p90: ack.p90,
      p99: ack.p99,
      max: ack.max,
      errors: ackErrors,
      missing: sends - acksReceived,
    },
    freshness: {
      samples: fresh.count,
      p50: fresh.p50,
      p90: fresh.p90,
      p99: fresh.p99,
      max: fresh.max,
      first_second_p99: first.p99,
      last_second_p99: last.p99,
      p99_by_minute: byMinute,
      // Sends on shared sliders whose version never became known: no ack, and no client got
      // the value (not samples; see shared.mjs).
      unresolved: shared.unresolved,
      // Sends on shared sliders stored before an earlier send of the same slider.
      reordered: shared.reordered,
    },
    shared_sliders: tracks.filter((t) => t !== null && t.shared).length,
    stale,
    undelivered,
    delivered: {
      messages: deliveredMessages,
      updates: deliveredUpdates,
      window_ms: round(windowMs),
      messages_per_s: round((deliveredMessages / windowMs) * 1000),
      updates_per_s: round((deliveredUpdates / windowMs) * 1000),
    },
    disconnects,
    send_lag: { p99: lag.p99, max: lag.max, skipped: dragged.skipped },
    generator: generatorStats(dragged),
  };
  log(
    `freshness p50 ${fresh.p50} p99 ${fresh.p99} ms, stale ${stale}, ` +
      `gen cpu ${result.generator.cpu_percent}%`,
  );
  await closeAll(clients);
  finish(result);
}

function generatorStats(dragged) {
  return {
    cpu_percent: dragged ? round(dragged.cpuPercent) : null,
    peak_rss_mb: round(process.resourceUsage().maxRSS / 1024),
  };
}

main().catch((error) => {
  log(`harness failure: ${error.stack || error}`);
  process.exit(1);
});
