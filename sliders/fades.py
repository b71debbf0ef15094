"""Fades: a preset recalled gradually, one transaction per frame, on the server's event loop.

Started by the socket's `preset:recall` and by the HTTP API (which hands `fade_to` to the
server's loop through sliders.notices.run_on_server_loop). One fade runs per board in a process:
a new one replaces it, and someone moving or grabbing a slider of the board cancels it (the
realtime server's notice dispatch calls `cancel`). A fade's changes carry its id as their
sender (see sliders.notices), so the board's other changes can be told apart from its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from sliders import db, notices, selectors, services
from sliders.cluster import get_cluster
from sliders.db import run_in_db_thread

logger = logging.getLogger(__name__)

FADE_FRAMES_PER_SECOND = 20
MAX_FADE_SECONDS = 60  # the longest fade the socket and the API accept


@dataclass
class Fade:
    """A preset being recalled gradually on one board by this process."""

    preset: str
    sender: str  # the fade's id ("fade:…"): its own changes carry it; anyone else's cancel it
    task: asyncio.Task[None] | None = None


_running: dict[str, Fade] = {}  # board -> the fade running on it here


def running(board_slug: str) -> Fade | None:
    """The fade running on a board in this process, if any."""
    return _running.get(board_slug)


async def fade_to(
    board_slug: str, preset: str, targets: dict[str, Any], seconds: float, actor: Any
) -> None:
    """Start fading `board_slug` to `targets` (a preset's values, by slider id) over `seconds`
    (0 < seconds <= MAX_FADE_SECONDS), replacing any running fade. Returns once started."""
    cancel(board_slug)
    fade = Fade(preset=preset, sender=f"fade:{secrets.token_hex(6)}")
    # The fade outlives the recall that started it: its frames have no deadline.
    fade.task = asyncio.create_task(
        _run_fade(board_slug, fade, targets, seconds, actor),
        context=db.context_without_deadline(),
    )
    _running[board_slug] = fade


def cancel(board_slug: str) -> None:
    """Stop the fade running on a board here, if any; its sliders stay where its last frame put
    them."""
    fade = _running.pop(board_slug, None)
    if fade is not None and fade.task is not None:
        fade.task.cancel()


async def _run_fade(
    board_slug: str, fade: Fade, targets: dict[str, Any], seconds: float, actor: Any
) -> None:
    """Move every slider of the preset from where it is to its target in equal steps.

    Each frame is one transaction (services.set_slider_values): versions bump per frame and
    clients see every frame whole. Someone grabbing or moving a slider of the board cancels
    the fade; the sliders stay where the last frame put them. A fade that ends is announced as
    a preset recall (for the bridges: webhooks); a cancelled one is not.
    """
    loop = asyncio.get_running_loop()
    cluster = get_cluster()
    notice = {"preset": fade.preset, "seconds": seconds, "id": fade.sender}
    await cluster.notify("fade", board_slug, {**notice, "state": "running"})
    state = "cancelled"
    moved: dict[str, services.SliderChange] = {}  # slider -> the fade's last change of it
    try:
        start, versions = await run_in_db_thread(
            selectors.values_and_versions, board_slug, list(targets)
        )
        frames = max(1, round(seconds * FADE_FRAMES_PER_SECOND))
        began = loop.time()
        for frame in range(1, frames + 1):
            await asyncio.sleep(max(0.0, began + seconds * frame / frames - loop.time()))
            values = (
                targets
                if frame == frames
                else {
                    slug: start[slug] + (float(target) - start[slug]) * frame / frames
                    for slug, target in targets.items()
                    if slug in start
                }
            )
            # Only over the versions this fade wrote: a frame that reaches the database after
            # someone else's change (from another thread or process) is refused, not applied.
            frame_write = asyncio.ensure_future(
                run_in_db_thread(
                    services.set_slider_values,
                    board=board_slug,
                    values=values,
                    actor=actor,
                    sender=fade.sender,
                    expected_versions=versions,
                )
            )
            try:
                changes = await asyncio.shield(frame_write)
            except asyncio.CancelledError:
                # Cancelling does not stop a frame the database thread is writing: let it
                # finish, so that nothing moves once the fade is announced "cancelled".
                with contextlib.suppress(Exception):
                    await frame_write
                raise
            versions.update({change.id: change.version for change in changes})
            moved.update({change.id: change for change in changes})
        state = "done"
        notices.preset_recalled(
            board_slug,
            preset=fade.preset,
            changes=list(moved.values()),
            fade=seconds,
            source=str(actor.source),
            actor=actor.name,
        )
    except services.Refusal as error:
        log = logger.info if error.code == "conflict" else logger.warning
        log("Fade to %r on board %s stopped: %s", fade.preset, board_slug, error.message)
    except DatabaseError:
        logger.exception("Fade to %r on board %s stopped", fade.preset, board_slug)
    finally:
        if _running.get(board_slug) is fade:
            del _running[board_slug]
        await cluster.notify("fade", board_slug, {**notice, "state": state})
