// The Node socket.io 4.x peer: the same protocol and in-memory board as peer_python.py,
// with socket.io's default server options. Usage: node peer_node.mjs PORT

import { Server } from "socket.io";

const BOARD = "bench";
const port = Number.parseInt(process.argv[2], 10);
const sliders = new Map();
for (let i = 1; i <= 8; i++) {
  sliders.set(`s${i}`, {
    id: `s${i}`,
    name: `Slider ${i}`,
    min: 0,
    max: 1_000_000_000,
    step: 1,
    value: 0,
    version: 0,
  });
}

const io = new Server(port);

io.on("connection", (socket) => {
  socket.join(BOARD);
  socket.emit("board:state", {
    board: BOARD,
    name: "Bench",
    can_edit: true,
    clients: io.of("/").sockets.size,
    sliders: [...sliders.values()],
  });

  socket.on("slider:set", (payload, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    const slider = payload && typeof payload === "object" ? sliders.get(payload.id) : undefined;
    if (slider === undefined) {
      reply({ ok: false, error: "bad_request", message: "Send {id, value}." });
      return;
    }
    if (typeof payload.value !== "number" || !Number.isFinite(payload.value)) {
      reply({ ok: false, error: "invalid_value", message: "Not a finite number." });
      return;
    }
    slider.value = payload.value;
    slider.version += 1;
    const update = { id: slider.id, value: slider.value, version: slider.version };
    socket.to(BOARD).emit("slider:update", update);
    reply({ ok: true, ...update });
  });
});

process.on("SIGTERM", () => {
  io.close();
  process.exit(0);
});
