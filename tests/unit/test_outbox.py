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


class Broken(Flaky):
    """A target whose send raises what no send should (a bug, not a network failure), once."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.broken = True

    async def send(self, changes: Sequence[Change]) -> None:
        await super().send(changes)
        if self.broken:
            self.broken = False
            raise SystemError("a bug in the sending code")


async def test_a_send_that_raises_any_exception_is_retried_and_sending_goes_on() -> None:
    async def store(target: Target, state: str, error: str | None) -> None:
        pass

    target = Broken()
    outbox = Outbox(target, store)
    outbox.start()
    try:
        outbox.put(Change("b", "s1", 1.0, 1))
        for _ in range(100):
            if target.sent and not target.broken:
                break
            await asyncio.sleep(0.01)
        outbox.put(Change("b", "s1", 2.0, 2))
        for _ in range(300):  # the task is started again within a second
            if [change.value for _, change in target.sent][-1:] == [2.0]:
                break
            await asyncio.sleep(0.01)
        assert [change.value for _, change in target.sent][-1] == 2.0, target.sent
    finally:
        await outbox.stop()


class BrokenOutbox(Outbox):
    """An outbox whose sending task fails once outside any send (a bug in a kind's own loop)."""

    failed = False

    async def _run(self) -> None:
        if not self.failed:
            self.failed = True
            raise SystemError("a bug in the sending loop")
        await super()._run()


async def test_an_outbox_whose_sending_task_fails_starts_it_again_and_keeps_what_waits() -> None:
    async def store(target: Target, state: str, error: str | None) -> None:
        pass

    target = Broken()
    target.broken = False
    outbox = BrokenOutbox(target, store)
    outbox.start()
    try:
        outbox.put(Change("b", "s1", 1.0, 1))
        for _ in range(300):  # started again a second after it failed
            if target.sent:
                break
            await asyncio.sleep(0.01)
        assert [change.value for _, change in target.sent] == [1.0]
    finally:
        await outbox.stop()
