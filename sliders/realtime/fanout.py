"""Slider updates to a board's clients: the latest value wins where messages wait.

Emitting every update to every client (python-socketio's room broadcast) queues one message per
client per update. When updates come faster than the server can write them, say a 30 Hz drag
seen by a thousand clients, those queues grow and every screen falls further behind for as
long as the drag lasts. A slider only needs its latest value, so here nothing queues per update:

- each board keeps the latest update of every slider, numbered by a board-wide sequence;
- a client with something new to hear gets ONE placeholder frame in its Engine.IO send queue,
  and no second one while that one waits;
- when the client's writer reaches the placeholder, it becomes every update the client has not
  had yet, latest values only: `slider:update` for one, `slider:updates` (a list) for several.

A client that keeps up gets every update as it happens; one that falls behind (or a server
that falls behind everyone) skips intermediate values instead of queueing stale ones, so the
backlog never grows. The encoded frame is cached, so clients at the same point share one
encoding. The wire format is in docs/protocol.md.

Most of the time a client's writer has nothing waiting, and then its frame does not wait
either: it is written straight to the client's websocket, the same bytes for every client at
the same point, built once (`Outlet.write_now`). No placeholder is queued and no writer task
wakes, which was most of a broadcast's cost. The placeholder is for the rest: a client whose
writer is busy (an ack, a `board:state` before it) or whose connection cannot take more yet,
and clients on long-polling.

Frames are handed to at most `FRAMES_PER_TURN` clients per turn of the event loop. Handing out a
thousand at once would make one turn of the loop take milliseconds (tens when each woke a
writer), and a `slider:set`, which needs a few turns to be stored and acked, would wait behind
every one of them.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sliders.realtime.internals import LazyFrame, websocket_frame


@dataclass(slots=True)
class _Latest:
    seq: int
    version: int
    update: dict[str, Any]
    sender: str | None  # who made the change (see BoardFeed.publish): it is not sent to them


class UpdateFrame(LazyFrame):
    """A placeholder in one client's send queue; encoded when the client's writer reaches it.

    Each client has one, queued again each time it has news (never twice at once).
    """

    def __init__(self, feed: BoardFeed, listener: _Listener) -> None:
        super().__init__()
        self.feed = feed
        self.listener = listener

    def text(self) -> str:
        return self.feed.take_frame(self.listener)


class Outlet(Protocol):
    """One client's way out (GuardedSocket in sliders.realtime.internals is the real one)."""

    def queue_frame(self, frame: LazyFrame) -> None:
        """Put `frame` in the client's send queue; its writer encodes and sends it in turn."""

    def can_write_now(self) -> bool:
        """Whether `write_now` would reach the client in order (its writer has nothing waiting)."""

    def write_now(self, frame: bytes) -> None:
        """Send a whole websocket frame to the client at once."""


@dataclass(slots=True)
class _Listener:
    sid: str
    outlet: Outlet
    heard_seq: int  # the board's sequence number when this client's last frame was written
    frame: UpdateFrame | None = None
    frame_waiting: bool = False


OutletOf = Callable[[str], Outlet | None]


@dataclass(slots=True)
class Totals:
    """Counts for /metrics, kept as plain integers (read when scraped)."""

    published: int = 0  # changes handed to a feed
    messages: int = 0  # frames written to clients
    written_at_once: int = 0  # of those, written straight to an idle websocket (write_now)
    updates: int = 0  # slider updates inside them


totals = Totals()

FRAMES_PER_TURN = 256


def encode_event(event: str, data: Any) -> str:
    """An Engine.IO message holding a Socket.IO event on the default namespace."""
    return "42" + json.dumps([event, data], separators=(",", ":"), allow_nan=False)


class BoardFeed:
    """The latest slider updates of one board, and who has heard them, in this process.

    `outlet_of(sid)` is how a client is reached, None once it is gone (boards.Feeds gives one).
    """

    def __init__(self, outlet_of: OutletOf) -> None:
        self.outlet_of = outlet_of
        self.seq = 0
        self._latest: dict[str, _Latest] = {}  # by slider id, oldest change first
        self._listeners: dict[str, _Listener] = {}
        self._cache: dict[int, str] = {}  # heard_seq -> frame, valid for the current seq
        self._wire: dict[str, bytes] = {}  # frame -> its websocket frame, for the current seq
        self._due: deque[_Listener] = deque()  # clients with news and no frame queued yet
        self._flusher: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._listeners)

    def publish(self, *updates: dict[str, Any], sender: str | None = None) -> None:
        """Changes committed together (a set: one; a preset: several); an update older than one
        already published is dropped.

        They reach each client in one message, never split: nobody sees half a preset applied.
        `sender`: who made the change, the Socket.IO sid of the connection that set it (it has
        its ack instead) or a fade's id; None (the admin, the API) sends it to everyone.
        """
        published = False
        for update in updates:
            slider_id, version = update["id"], update["version"]
            previous = self._latest.pop(slider_id, None)
            if previous is not None and previous.version >= version:
                self._latest[slider_id] = previous
                continue
            self.seq += 1
            totals.published += 1
            self._latest[slider_id] = _Latest(self.seq, version, update, sender)
            published = True
        if not published:
            return
        self._cache.clear()
        self._wire.clear()
        for listener in self._listeners.values():
            if not listener.frame_waiting and listener.sid != sender:
                listener.frame_waiting = True
                self._due.append(listener)
        self._flush()

    def listen(self, sid: str, *, since_seq: int) -> None:
        """Start sending `sid` updates newer than `since_seq`, after what is queued for it.

        Call it once the client's `board:state` is queued (its first, or one sent again), with
        `self.seq` as it was before that state was read: anything published since may be
        missing from the state, or have reached the client before it, and is sent after it.
        A client that is gone already is not listened to.
        """
        outlet = self.outlet_of(sid)
        if outlet is None:
            return
        listener = _Listener(sid, outlet, since_seq)
        self._listeners[sid] = listener
        if since_seq < self.seq:
            listener.frame_waiting = True
            self._due.append(listener)
            self._flush()

    def forget(self, sid: str) -> None:
        """Stop sending `sid` updates (it left)."""
        self._listeners.pop(sid, None)

    def take_frame(self, listener: _Listener) -> str:
        """Everything `listener` has not heard yet, as one encoded message; marks it heard."""
        heard_seq = listener.heard_seq
        listener.heard_seq = self.seq
        listener.frame_waiting = False
        updates: list[dict[str, Any]] = []
        skipped_own = False
        for latest in reversed(self._latest.values()):
            if latest.seq <= heard_seq:
                break
            if latest.sender == listener.sid:
                skipped_own = True
            else:
                updates.append(latest.update)
        totals.messages += 1
        totals.updates += len(updates)
        if not skipped_own and (frame := self._cache.get(heard_seq)) is not None:
            return frame
        if len(updates) == 1:
            frame = encode_event("slider:update", updates[0])
        else:
            # Several at once, oldest first. Empty only when a change this client made itself
            # replaced the one its frame was for; an empty list is harmless to every client.
            frame = encode_event("slider:updates", updates[::-1])
        if not skipped_own:
            self._cache[heard_seq] = frame
        return frame

    def _flush(self) -> None:
        """Queue the due frames: now if they are few, else a turn of the event loop at a time."""
        if self._flusher is not None:
            return  # the running flusher will get to them
        if len(self._due) <= FRAMES_PER_TURN:
            self._queue_frames(len(self._due))
        else:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_in_turns())

    async def _flush_in_turns(self) -> None:
        try:
            while self._due:
                self._queue_frames(min(FRAMES_PER_TURN, len(self._due)))
                await asyncio.sleep(0)  # the writers just woken (and everything else) run first
        finally:
            self._flusher = None

    def _queue_frames(self, count: int) -> None:
        """Hand the next `count` due clients their frame: written now, or queued."""
        for _ in range(count):
            listener = self._due.popleft()
            if self._listeners.get(listener.sid) is not listener:
                continue  # gone since
            outlet = listener.outlet
            if outlet.can_write_now():
                text = self.take_frame(listener)
                wire = self._wire.get(text)
                if wire is None:
                    wire = self._wire[text] = websocket_frame(text)
                outlet.write_now(wire)
                totals.written_at_once += 1
                continue
            frame = listener.frame
            if frame is None:
                frame = listener.frame = UpdateFrame(self, listener)
            frame.reset()
            outlet.queue_frame(frame)
