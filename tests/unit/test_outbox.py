"""A bridge target's outbox (sliders/bridges/outbox.py) told by its target how it is doing.

The sends of the OSC and MQTT tests go over real sockets; here the target is a small class of
the test's own, since what is checked is the outbox's timing against its own back-off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from sliders.bridges.base import Change, Target
from sliders.bridges.outbox import Outbox
from sliders.models import MqttBroker


class Flaky(Target):
    """A target that fails while `up` is false, like an MQTT line whose broker is down."""

    def __init__(self) -> None:
        self.key, self.board, self.rate, self.model, self.pk = "test:1", "b", 1000.0, MqttBroker, 0
        self.settings, self.label = None, "test"
        self.up = False
        self.sent: list[tuple[float, Change]] = []
        self.report: Callable[[Exception | None], None] | None = None

    async def send(self, changes: Sequence[Change]) -> None:
        if not self.up:
            raise ConnectionError("down")
        self.sent.extend((time.monotonic(), change) for change in changes)

    def watch(self, report: Callable[[Exception | None], None]) -> None:
        self.report = report


async def test_a_target_that_reports_it_works_again_is_sent_at_once_not_after_the_back_off() -> (
    None
):
    states: list[str] = []

    async def store(target: Target, state: str, error: str | None) -> None:
        states.append(state)

    target = Flaky()
    outbox = Outbox(target, store)
    outbox.start()
    assert target.report is not None  # the outbox gave the target its report
    try:
        outbox.put(Change("b", "s1", 1.0, 1))
        await asyncio.sleep(2.0)  # failed sends at 0, 0.5 and 1.5 s: the next one is at 3.5 s
        assert outbox.state == "failing" and not target.sent

        target.up = True
        target.report(None)  # back, 0.5 s into a wait of 2 s: the next retry would be at 3.5 s
        back = time.monotonic()
        for _ in range(50):
            if target.sent:
                break
            await asyncio.sleep(0.01)
        assert target.sent and target.sent[0][0] - back < 0.5
        assert outbox.state == "ok" and states[-1] == "ok"

        target.report(ConnectionError("lost"))  # between sends: the state follows at once
        assert outbox.state == "failing"
    finally:
        await outbox.stop()
