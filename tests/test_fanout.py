"""The fan-out of slider updates: latest value wins where messages wait (realtime/fanout.py).

These drive a BoardFeed directly, with a list standing in for each client's Engine.IO send
queue and another for what is written straight to its websocket; the live tests
(test_realtime, test_invariants, test_metrics, the benchmark's smoke run) cover it on a real
server.
"""

from __future__ import annotations

import json
from typing import Any

from sliders.realtime.fanout import BoardFeed, Outlet
from sliders.realtime.internals import LazyFrame, websocket_frame


class FakeOutlet:
    """One client: frames queued for its writer, and frames written at once when `open`."""

    def __init__(self, queues: Queues, sid: str) -> None:
        self.queues, self.sid = queues, sid
        self.open = False  # whether the feed may write to it at once (an idle websocket)
        self.written: list[bytes] = []

    def queue_frame(self, frame: LazyFrame) -> None:
        self.queues.waiting.setdefault(self.sid, []).append(frame)

    def can_write_now(self) -> bool:
        return self.open and not self.queues.waiting.get(self.sid)

    def write_now(self, frame: bytes) -> None:
        self.written.append(frame)


class Queues:
    """Each client's send queue, as the feed fills it."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[LazyFrame]] = {}
        self.outlets: dict[str, FakeOutlet] = {}

    def outlet_of(self, sid: str) -> Outlet:
        return self.outlets.setdefault(sid, FakeOutlet(self, sid))

    def write(self, sid: str) -> list[Any]:
        """What the client's writer sends now: each waiting frame, decoded."""
        frames, self.waiting[sid] = self.waiting.get(sid, []), []
        decoded = []
        for frame in frames:
            text = frame.encode()
            assert text.startswith("42")
            decoded.append(json.loads(text[2:]))
        return decoded


def update(slider: str, value: float, version: int) -> dict[str, Any]:
    return {"id": slider, "value": value, "version": version}


def make_feed(*sids: str) -> tuple[BoardFeed, Queues]:
    queues = Queues()
    feed = BoardFeed(queues.outlet_of)
    for sid in sids:
        feed.listen(sid, since_seq=feed.seq)
    return feed, queues


def test_a_client_that_keeps_up_hears_every_update() -> None:
    feed, queues = make_feed("a")
    for version in (1, 2, 3):
        feed.publish(update("s1", version * 10, version))
        assert queues.write("a") == [["slider:update", update("s1", version * 10, version)]]


def test_a_client_that_is_behind_gets_one_message_with_the_latest_values() -> None:
    feed, queues = make_feed("a")
    for version in range(1, 101):
        feed.publish(update("s1", version, version))
        feed.publish(update("s2", -version, version))
    assert len(queues.waiting["a"]) == 1  # one waiting message, however many updates
    assert queues.write("a") == [
        ["slider:updates", [update("s1", 100, 100), update("s2", -100, 100)]]
    ]
    assert queues.write("a") == []


def test_the_sender_does_not_hear_its_own_change() -> None:
    feed, queues = make_feed("a", "b")
    feed.publish(update("s1", 5, 1), sender="a")
    assert queues.waiting.get("a", []) == []
    assert queues.write("b") == [["slider:update", update("s1", 5, 1)]]


def test_a_waiting_message_skips_the_clients_own_later_change() -> None:
    feed, queues = make_feed("a", "b")
    feed.publish(update("s1", 5, 1), sender="b")
    feed.publish(update("s2", 7, 1), sender="b")
    feed.publish(update("s1", 6, 2), sender="a")  # replaces b's s1 before a's message is sent
    assert queues.write("a") == [["slider:update", update("s2", 7, 1)]]
    # b's message (same point in the feed) is not a's cached one: b hears a's change.
    assert queues.write("b") == [["slider:update", update("s1", 6, 2)]]


def test_an_empty_list_when_only_the_clients_own_change_is_left() -> None:
    feed, queues = make_feed("a", "b")
    feed.publish(update("s1", 5, 1), sender="b")
    feed.publish(update("s1", 6, 2), sender="a")
    assert queues.write("a") == [["slider:updates", []]]


def test_an_older_version_arriving_late_is_dropped() -> None:
    feed, queues = make_feed("a")
    feed.publish(update("s1", 9, 9))
    queues.write("a")
    feed.publish(update("s1", 8, 8))  # e.g. from another process, out of order
    feed.publish(update("s1", 9, 9))  # or twice
    assert queues.waiting["a"] == []
    feed.publish(update("s1", 10, 10))
    assert queues.write("a") == [["slider:update", update("s1", 10, 10)]]


def test_a_new_listener_gets_what_was_published_since_its_state_was_read() -> None:
    feed, queues = make_feed("a")
    feed.publish(update("s1", 1, 1))
    since = feed.seq  # the state is read here: it holds version 1
    feed.publish(update("s2", 2, 1))  # committed while the state was on its way
    feed.listen("late", since_seq=since)
    assert queues.write("late") == [["slider:update", update("s2", 2, 1)]]


def test_clients_at_the_same_point_share_one_encoding() -> None:
    feed, queues = make_feed("a", "b", "c")
    feed.publish(update("s1", 1, 1))
    feed.publish(update("s2", 2, 1))
    texts = {sid: queues.waiting[sid][0].encode() for sid in "abc"}
    assert texts["a"] is texts["b"] is texts["c"]


def test_a_forgotten_client_gets_nothing_more() -> None:
    feed, queues = make_feed("a")
    feed.forget("a")
    feed.publish(update("s1", 1, 1))
    assert queues.waiting.get("a", []) == []
    assert len(feed) == 0


async def test_a_crowd_is_handed_its_frames_a_turn_at_a_time() -> None:
    """More than FRAMES_PER_TURN clients: the rest wait for the next turn of the event loop,
    and a change meanwhile joins the frames already due instead of adding more."""
    import asyncio

    from sliders.realtime.fanout import FRAMES_PER_TURN

    sids = [f"c{i}" for i in range(FRAMES_PER_TURN + 10)]
    feed, queues = make_feed(*sids)
    feed.publish(update("s1", 1, 1))
    await asyncio.sleep(0)  # the first turn
    queued = [sid for sid in sids if queues.waiting.get(sid)]
    assert queued == sids[:FRAMES_PER_TURN]
    feed.publish(update("s1", 2, 2))  # before the late ones got their frame
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert all(len(queues.waiting[sid]) == 1 for sid in sids)  # one frame each, no more
    for sid in (sids[0], sids[-1]):  # written now, both carry the latest value
        assert queues.write(sid) == [["slider:update", update("s1", 2, 2)]]


def test_an_idle_websocket_is_written_the_frame_at_once_and_shares_its_bytes() -> None:
    feed, queues = make_feed("a", "b", "busy")
    for sid in ("a", "b", "busy"):
        queues.outlets[sid].open = True
    queues.waiting["busy"] = [LazyFrame()]  # its writer has an ack to send first
    feed.publish(update("s1", 1, 1))
    a, b = queues.outlets["a"].written, queues.outlets["b"].written
    expected = websocket_frame('42["slider:update",{"id":"s1","value":1,"version":1}]')
    assert a == b == [expected]
    assert a[0] is b[0]  # built once for both
    # The busy one gets its frame behind what waits, as before: nothing overtakes an ack.
    assert queues.outlets["busy"].written == []
    assert len(queues.waiting["busy"]) == 2


def test_a_client_gone_before_it_listens_is_not_listened_to() -> None:
    feed = BoardFeed(lambda sid: None)
    feed.listen("gone", since_seq=0)
    assert len(feed) == 0


def test_changes_committed_together_reach_an_idle_websocket_in_one_message() -> None:
    """Invariant: nobody sees half a preset applied, even when each frame goes out at once."""
    feed, queues = make_feed("a")
    queues.outlets["a"].open = True
    feed.publish(update("s1", 1, 1), update("s2", 2, 1), update("s3", 3, 1))
    (frame,) = queues.outlets["a"].written
    assert frame == websocket_frame(
        '42["slider:updates",[{"id":"s1","value":1,"version":1},'
        '{"id":"s2","value":2,"version":1},{"id":"s3","value":3,"version":1}]]'
    )
