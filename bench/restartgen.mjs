// Clients that reconnect, for the rolling-restart run (bench/restart.py, bench/README.md).
//
// Opens N websocket clients on one board (through nginx: wss, trusting the CA file given), lets
// S of them drag one slider each at R sets per second until a line "stop" arrives on stdin, and
// reconnects every client that loses its connection as socket.io's client does: after 1 s,
// doubling up to 5 s, each delay moved by up to half at random. A connection's first
// `board:state` replaces what the client holds; later messages obey versions (docs/protocol.md).
//
// Measures, for every connection lost, the time until the client has `board:state` again
// (grouped by the last "mark <label>" line read before the loss); counts the sets acked OK,
// refused, and never answered (in flight when the connection dropped) or never sent (the dragger
// was disconnected); and, after "stop", waits for every client to be back and checks that each
// holds the board's final values (a fresh client's `board:state`). Prints one JSON object on
// stdout; progress and the markers restart.py reads go to stderr.
//
// Like loadgen.mjs it speaks Engine.IO v4 / Socket.IO v5 itself on `ws`; it is a separate
// program because reconnecting clients and an open-ended drag do not fit loadgen's fixed phases.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { Samples, round, summarize } from "./samples.mjs";

const USAGE = `usage: node restartgen.mjs --url https://127.0.0.1:8443 [--board bench] [--clients 100]
  [--draggers 2] [--rate 10] [--ca cert.pem] [--addresses 1] [--connect-timeout 60]
  [--settle 30]`;

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000" },
    board: { type: "string", default: "bench" },
    clients: { type: "string", default: "100" },
    draggers: { type: "string", default: "2" },
    rate: { type: "string", default: "10" },
    // A PEM file of the certificate(s) to trust for wss (nginx's self-signed one).
    ca: { type: "string" },
    // Spread the clients over this many source addresses 127.0.k.1 (k = 0, 1, ...), so that
    // nginx's ip_hash (by the first three bytes) spreads them over the backends as it would
    // spread an audience. 1: every client connects from the system's default address.
    addresses: { type: "string", default: "1" },
    "connect-timeout": { type: "string", default: "60" },
    settle: { type: "string", default: "30" },
    help: { type: "boolean", default: false },
  },
});
if (opts.help) {
  process.stderr.write(USAGE + "\n");
  process.exit(0);
}

const N = Number.parseInt(opts.clients, 10);
const S = Number.parseInt(opts.draggers, 10);
const RATE = Number(opts.rate);
const ADDRESSES = Number.parseInt(opts.addresses, 10);
const CONNECT_PHASE_MS = Number(opts["connect-timeout"]) * 1000;
const SETTLE_MS = Number(opts.settle) * 1000;
const CA = opts.ca ? readFileSync(opts.ca) : undefined;
const AUTH = JSON.stringify({ board: opts.board });
const WS_URL = (() => {
  const base = new URL(opts.url);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = "/socket.io/";
  base.search = "?EIO=4&transport=websocket";
  return base.toString();
})();

// socket.io-client's defaults: reconnectionDelay, reconnectionDelayMax, randomizationFactor,
// and the time an attempt may take (timeout).
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 5000;
const JITTER = 0.5;
const ATTEMPT_TIMEOUT_MS = 20000;
const MAX_SLIDERS = 64;

function log(message) {
  process.stderr.write(`[restartgen] ${message}\n`);
}

function marker(name) {
  process.stderr.write(`@@RESTART ${name}\n`);
}

/** socket.io-client's backoff: 1 s x 2^attempt, moved by up to half at random, at most 5 s. */
function backoffDelay(attempt) {
  let ms = RECONNECT_MIN_MS * 2 ** attempt;
  const rand = Math.random();
  const deviation = Math.floor(rand * JITTER * ms);
  ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
  return Math.min(ms, RECONNECT_MAX_MS) | 0;
}

/** Nearest-rank p50, p99 and max of a list of milliseconds, with its count (samples.mjs). */
function summarizeMs(list) {
  const samples = new Samples();
  for (const ms of list) samples.push(ms);
  return summarize(samples, [0.5, 0.99]);
}

function bump(counts, key) {
  counts[key] = (counts[key] || 0) + 1;
}

// --- What the clients hold ----------------------------------------------------------------

const sliderIndex = new Map(); // slider id -> column
let sliderIds = [];
// Row N is the probe: a fresh client that reads the final state.
const heldValue = new Float64Array((N + 1) * MAX_SLIDERS);
const heldVersion = new Float64Array((N + 1) * MAX_SLIDERS).fill(-1);

function learnSliders(sliders) {
  if (sliderIds.length > 0) return;
  sliderIds = sliders.map((s) => s.id).slice(0, MAX_SLIDERS);
  sliderIds.forEach((id, i) => sliderIndex.set(id, i));
}

function apply(row, update) {
  const si = sliderIndex.get(update.id);
  if (si === undefined) return;
  const k = row * MAX_SLIDERS + si;
  if (update.version > heldVersion[k]) {
    heldVersion[k] = update.version;
    heldValue[k] = update.value;
  }
}

// --- Measurements -------------------------------------------------------------------------

const marks = [{ label: "before the first mark", at: 0 }];
const outages = []; // {mark, ms} for each connection lost and got back
const attemptFailures = {}; // why reconnect attempts failed: http_502, timeout, refused_<code>, ...
let connectionsLost = 0;
const ackLatency = [];
const sets = { sent: 0, acked_ok: 0, errors: {}, unanswered: 0, not_sent_disconnected: 0 };

function markAt(time) {
  let found = marks[0];
  for (const mark of marks) if (mark.at <= time) found = mark;
  return found.label;
}

// --- Clients ------------------------------------------------------------------------------

class Client {
  constructor(row) {
    this.row = row;
    this.localAddress = ADDRESSES > 1 ? `127.0.${row % ADDRESSES}.1` : undefined;
    this.ws = null;
    this.ready = false; // holds this connection's first board:state
    this.firstStateMs = null;
    this.lostAt = null; // when it lost a connection it had, until it has board:state again
    this.attempts = 0;
    this.timer = null;
    this.failure = null; // why the current attempt failed, if it does
    // A dragger's slider, its sets waiting for an ack (ack id -> {value, sentAt}) and results.
    this.slider = null;
    this.nextAckId = 0;
    this.pending = new Map();
    this.lastSent = null;
    this.lastAcked = null; // {value, version} of the acked-OK set with the greatest version
  }

  open() {
    this.failure = null;
    const ws = new WebSocket(WS_URL, {
      ca: CA,
      localAddress: this.localAddress,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: ATTEMPT_TIMEOUT_MS,
    });
    this.ws = ws;
    this.timer = setTimeout(() => {
      this.failure = "timeout";
      ws.terminate();
    }, ATTEMPT_TIMEOUT_MS);
    ws.on("message", (data) => {
      if (this.ws === ws) this.onMessage(data.toString());
    });
    ws.on("error", (error) => {
      const status = /Unexpected server response: (\d+)/.exec(error.message);
      this.failure ??= status ? `http_${status[1]}` : error.code || "error";
    });
    ws.on("close", () => {
      if (this.ws === ws) this.onClose();
    });
  }

  onClose() {
    clearTimeout(this.timer);
    this.ws = null;
    if (this.ready) {
      this.ready = false;
      this.lostAt = performance.now();
      connectionsLost++;
      sets.unanswered += this.pending.size;
      this.pending.clear();
      this.attempts = 0; // socket.io's client resets its backoff when a connection closes
    } else {
      bump(attemptFailures, this.failure || "closed");
    }
    if (closingAll) return;
    setTimeout(() => this.open(), backoffDelay(this.attempts++));
  }

  onMessage(text) {
    const type = text.charCodeAt(0);
    if (type === 52 /* 4: message */) {
      const packet = text.charCodeAt(1);
      if (packet === 50 /* 2: event */) {
        this.onEvent(JSON.parse(text.slice(2)));
      } else if (packet === 51 /* 3: ack */) {
        this.onAck(text);
      } else if (packet === 52 /* 4: connect error */) {
        let code = "unknown";
        try {
          code = JSON.parse(text.slice(2))?.data?.code ?? "unknown";
        } catch {
          // keep "unknown"
        }
        this.failure = `refused_${code}`;
        this.ws.close();
      } else if (packet === 49 /* 1: disconnect */) {
        this.ws.close();
      }
    } else if (type === 50 /* 2: ping */) {
      this.ws.send("3");
    } else if (type === 48 /* 0: open */) {
      this.ws.send("40" + AUTH);
    }
  }

  onEvent([event, data]) {
    if (event === "slider:update") {
      apply(this.row, data);
    } else if (event === "slider:updates") {
      for (const update of data) apply(this.row, update);
    } else if (event === "board:state") {
      learnSliders(data.sliders);
      if (!this.ready) {
        // A new connection: forget the versions held, as the page does.
        heldVersion.fill(-1, this.row * MAX_SLIDERS, (this.row + 1) * MAX_SLIDERS);
      }
      for (const slider of data.sliders) apply(this.row, slider);
      if (!this.ready) this.onFirstState();
    }
  }

  onFirstState() {
    const now = performance.now();
    clearTimeout(this.timer);
    this.ready = true;
    this.attempts = 0;
    if (this.firstStateMs === null) this.firstStateMs = now - startedAt;
    if (this.lostAt !== null) {
      outages.push({ mark: markAt(this.lostAt), ms: now - this.lostAt });
      this.lostAt = null;
    }
  }

  send(value) {
    const id = this.nextAckId++;
    this.pending.set(id, { value, sentAt: performance.now() });
    this.ws.send(`42${id}["slider:set",{"id":"${this.slider}","value":${value}}]`);
    this.lastSent = value;
    sets.sent++;
  }

  onAck(text) {
    const bracket = text.indexOf("[", 2);
    const id = Number.parseInt(text.slice(2, bracket), 10);
    const sent = this.pending.get(id);
    if (sent === undefined) return;
    this.pending.delete(id);
    const ack = JSON.parse(text.slice(bracket))[0];
    if (ack && ack.ok === true) {
      sets.acked_ok++;
      ackLatency.push(performance.now() - sent.sentAt);
      // The server does not echo a set to its sender: the ack is how it learns the version.
      apply(this.row, { id: this.slider, value: ack.value, version: ack.version });
      // A superseded set is answered with the newer set's ack: keep the greatest version.
      if (this.lastAcked === null || ack.version > this.lastAcked.version) {
        this.lastAcked = { value: ack.value, version: ack.version };
      }
    } else {
      bump(sets.errors, (ack && ack.error) || "unknown");
    }
  }

  holdsFinal() {
    for (let si = 0; si < sliderIds.length; si++) {
      const k = this.row * MAX_SLIDERS + si;
      const f = N * MAX_SLIDERS + si;
      if (heldVersion[k] !== heldVersion[f] || heldValue[k] !== heldValue[f]) return false;
    }
    return true;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let startedAt = 0;
let closingAll = false;

async function waitUntil(condition, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await sleep(50);
  return condition();
}

// --- The run ------------------------------------------------------------------------------

/** Every dragger sends on a fixed grid of RATE per second; values only grow, by 1 per tick. */
function startDrag(draggers) {
  const period = 1000 / RATE;
  const begin = performance.now();
  const starts = draggers.map((d) => heldValue[d.row * MAX_SLIDERS + sliderIndex.get(d.slider)] + 1);
  let tick = 0;
  let timer = null;
  const step = () => {
    const due = begin + tick * period;
    for (let i = 0; i < draggers.length; i++) {
      const d = draggers[i];
      if (d.ready) d.send(starts[i] + tick);
      else sets.not_sent_disconnected++;
    }
    tick++;
    timer = setTimeout(step, Math.max(0, due + period - performance.now()));
  };
  step();
  return () => clearTimeout(timer);
}

function readCommands(onStop) {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const [command, ...rest] = line.trim().split(" ");
    if (command === "mark") {
      marks.push({ label: rest.join(" "), at: performance.now() });
    } else if (command === "stop") {
      onStop();
    }
  });
  lines.on("close", onStop); // the orchestrator went away: finish rather than drag forever
}

function report(clients, probe, connect, settleMs) {
  const byMark = {};
  for (const mark of marks) {
    const samples = outages.filter((o) => o.mark === mark.label).map((o) => o.ms);
    const out = clients.filter((c) => c.lostAt !== null && markAt(c.lostAt) === mark.label);
    if (samples.length || out.length) {
      byMark[mark.label] = { ...summarizeMs(samples), not_back: out.length };
    }
  }
  const notBack = clients.filter((c) => !c.ready);
  const diverged = clients.filter((c) => c.ready && !c.holdsFinal());
  const finalState = {};
  sliderIds.forEach((id, si) => {
    const f = N * MAX_SLIDERS + si;
    finalState[id] = probe.ready ? { value: heldValue[f], version: heldVersion[f] } : null;
  });
  const examples = diverged.slice(0, 5).map((c) => ({
    client: c.row,
    holds: Object.fromEntries(
      sliderIds.map((id, si) => {
        const k = c.row * MAX_SLIDERS + si;
        return [id, { value: heldValue[k], version: heldVersion[k] }];
      }),
    ),
  }));
  return {
    clients: N,
    draggers: S,
    rate: RATE,
    addresses: ADDRESSES,
    connect,
    connections_lost: connectionsLost,
    reconnect: { ...summarizeMs(outages.map((o) => o.ms)), by_mark: byMark },
    attempt_failures: attemptFailures,
    never_back: notBack.length,
    sets: { ...sets, ack: summarizeMs(ackLatency) },
    dragged: clients
      .filter((c) => c.slider !== null)
      .map((c) => ({
        id: c.slider,
        client: c.row,
        last_sent: c.lastSent,
        last_acked: c.lastAcked,
      })),
    final_state: finalState,
    probe_ok: probe.ready,
    converged: clients.length - notBack.length - diverged.length,
    not_converged: diverged.length,
    not_converged_examples: examples,
    settle_ms: round(settleMs),
  };
}

async function main() {
  if (!(N > 0) || !(S >= 0) || S > N || !(RATE > 0) || !(ADDRESSES >= 1) || ADDRESSES > 256) {
    process.stderr.write(USAGE + "\n");
    process.exit(2);
  }
  log(`connecting ${N} clients to ${WS_URL}`);
  startedAt = performance.now();
  const clients = [];
  for (let row = 0; row < N; row++) clients.push(new Client(row));
  for (const c of clients) c.open();
  await waitUntil(() => clients.every((c) => c.ready), CONNECT_PHASE_MS);
  const firsts = clients.filter((c) => c.firstStateMs !== null).map((c) => c.firstStateMs);
  const connect = { ...summarizeMs(firsts), failed: N - firsts.length };
  log(`connected ${firsts.length}/${N} (p50 ${connect.p50} ms, p99 ${connect.p99} ms)`);
  if (S > sliderIds.length) {
    log(`--draggers ${S} exceeds the board's ${sliderIds.length} sliders`);
    process.exit(2);
  }
  marker("connected");

  const draggers = clients.slice(0, S);
  draggers.forEach((d, i) => {
    d.slider = sliderIds[i];
  });
  let stop;
  const stopped = new Promise((resolve) => {
    stop = resolve;
  });
  readCommands(() => stop());
  await sleep(1000); // presence messages of the connect burst die down
  const stopDrag = startDrag(draggers);
  marker("dragging");
  const progress = setInterval(() => {
    const ready = clients.filter((c) => c.ready).length;
    log(`${ready}/${N} connected, ${sets.sent} sets sent, ${sets.acked_ok} acked OK`);
  }, 5000);
  await stopped;
  stopDrag();
  const settleStart = performance.now();
  log("drag stopped; waiting for every ack, then for every client to hold the final values");
  await waitUntil(() => draggers.every((d) => !d.ready || d.pending.size === 0), 5000);
  // The values are final now: a fresh client's first board:state is what everyone should hold.
  const probe = new Client(N);
  probe.open();
  const left = Math.max(1000, SETTLE_MS - (performance.now() - settleStart));
  await waitUntil(() => probe.ready && clients.every((c) => c.ready && c.holdsFinal()), left);
  clearInterval(progress);
  const result = report(clients, probe, connect, performance.now() - settleStart);
  log(
    `reconnect p50 ${result.reconnect.p50} p99 ${result.reconnect.p99} max ` +
      `${result.reconnect.max} ms; never back ${result.never_back}; ` +
      `not converged ${result.not_converged}`,
  );
  marker("settled");
  closingAll = true;
  for (const c of [...clients, probe]) if (c.ws) c.ws.terminate();
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
}

main().catch((error) => {
  log(`harness failure: ${error.stack || error}`);
  process.exit(1);
});
