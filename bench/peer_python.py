"""The plain python-socketio peer: the tutorial-shaped server, speaking Slider Sync's protocol.

One in-memory board, no database, no validation beyond the minimum, no rate limit: what a
first version built from the python-socketio docs looks like. Usage: peer_python.py PORT
"""

from __future__ import annotations

import math
import sys

import socketio
import uvicorn

BOARD = "bench"
sliders = {
    f"s{i}": {
        "id": f"s{i}",
        "name": f"Slider {i}",
        "min": 0,
        "max": 1_000_000_000,
        "step": 1,
        "value": 0,
        "version": 0,
    }
    for i in range(1, 9)
}
clients = set()

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid, environ, auth=None):
    clients.add(sid)
    await sio.enter_room(sid, BOARD)
    state = {
        "board": BOARD,
        "name": "Bench",
        "can_edit": True,
        "clients": len(clients),
        "sliders": list(sliders.values()),
    }
    await sio.emit("board:state", state, to=sid)


@sio.event
async def disconnect(sid, reason=None):
    clients.discard(sid)


@sio.on("slider:set")
async def slider_set(sid, payload=None):
    if not isinstance(payload, dict) or payload.get("id") not in sliders:
        return {"ok": False, "error": "bad_request", "message": "Send {id, value}."}
    value = payload.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return {"ok": False, "error": "invalid_value", "message": "Not a finite number."}
    slider = sliders[payload["id"]]
    slider["value"] = value
    slider["version"] += 1
    update = {"id": slider["id"], "value": value, "version": slider["version"]}
    await sio.emit("slider:update", update, room=BOARD, skip_sid=sid)
    return {"ok": True, **update}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
