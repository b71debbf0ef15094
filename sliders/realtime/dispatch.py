"""Cluster notices (sliders.cluster) to what each kind does for this process's clients.

Every process hears every notice, its own included (see sliders.cluster for the kinds and their
data). `on_notice` looks the kind up in `HANDLERS`; an unknown kind is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sliders import fades, metrics
from sliders.realtime.boards import feeds, hands, presence, send_to_board
from sliders.realtime.connections import NAME_LENGTH, registry
from sliders.realtime.state import resend_board_state, resync_all_boards

NoticeHandler = Callable[[str, Any], Awaitable[None]]  # (board slug, data)


async def on_notice(kind: str, board_slug: str, data: Any) -> None:
    """A notice from any process (this one included) about a board."""
    handler = HANDLERS.get(kind)
    if handler is not None:
        await handler(board_slug, data)


async def _on_update(board_slug: str, data: Any) -> None:
    """Committed slider changes: to the board's feed (data: {"updates", "origin"})."""
    updates, sender = data["updates"], data.get("origin")
    fade = fades.running(board_slug)
    if fade is not None and sender != fade.sender:
        fades.cancel(board_slug)  # someone else moved a slider of the board
    feed = feeds.of(board_slug)
    feed.publish(*updates, sender=sender)  # together: one frame carries all of them
    received = registry.take_set_received(sender) if sender else None
    if received is not None:
        metrics.SET_TO_BROADCAST.observe(time.perf_counter() - received)


async def _on_hand(board_slug: str, data: Any) -> None:
    """A hand taken or let go on a slider (data: {id, hand, by, held})."""
    if data.get("held") is True:
        fades.cancel(board_slug)  # someone took hold of a slider
    slider_id, hand, by, held = data["id"], data["hand"], data["by"], data["held"]
    if not all(isinstance(x, str) for x in (slider_id, hand, by)) or not isinstance(held, bool):
        raise ValueError(f"malformed hand notice: {data!r}")
    if held:
        await hands.grab(board_slug, slider_id, hand, by[:NAME_LENGTH])
    else:
        await hands.release(board_slug, slider_id, hand)


async def _on_fade(board_slug: str, data: Any) -> None:
    """A fade started or ended somewhere (data: {preset, seconds, state, id})."""
    fade = fades.running(board_slug)
    if data.get("state") == "running" and fade is not None and data.get("id") != fade.sender:
        fades.cancel(board_slug)  # a newer fade started elsewhere (another process)
    public = {key: data.get(key) for key in ("preset", "seconds", "state")}
    await send_to_board(board_slug, "board:fade", public)


async def _on_board(board_slug: str, data: Any) -> None:
    """A board's structure changed: its clients here get a new `board:state`."""
    await resend_board_state(board_slug)


async def _on_presence(board_slug: str, data: Any) -> None:
    """The board's count may have changed somewhere ("presence", "recount")."""
    presence.refresh(board_slug)


async def _on_resync(board_slug: str, data: Any) -> None:
    """Notices may have been lost: every client here gets a new `board:state`."""
    await resync_all_boards()


HANDLERS: dict[str, NoticeHandler] = {
    "update": _on_update,
    "hand": _on_hand,
    "fade": _on_fade,
    "board": _on_board,
    "presence": _on_presence,
    "recount": _on_presence,
    "resync": _on_resync,
}
