"""The replies to a client's events (acks); see docs/protocol.md for the codes."""

from __future__ import annotations

from typing import Any

Ack = dict[str, Any]


def error_ack(code: str, message: str) -> Ack:
    """An error reply to a client's event: `{"ok": false, "error": code, "message": message}`."""
    return {"ok": False, "error": code, "message": message}
