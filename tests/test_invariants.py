"""The design's invariants that hold within one server process, each with its own test.

Invariant 5 (convergence across processes) needs several servers and Redis; it is tested
with the scale-out setup. The browser's side of invariants 3 and 7 is tested in the browser tests.
"""

from __future__ import annotations

import asyncio
import html
import math
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sliders.services import Refusal, normalize_value
from tests.support.checks import assert_valid_stored_value, on_grid
from tests.support.clients import BoardClient
from tests.support.database import slider_row, stored

pytestmark = pytest.mark.live


async def wait_for_update(client: BoardClient, slider_id: str, version: int) -> dict[str, Any]:
    def arrived() -> Any:
        return next(
            (
                u
                for u in client.of("slider:update")
                if u["id"] == slider_id and u["version"] == version
            ),
            None,
        )

    return await client.wait_for(arrived)


# --- 1. A stored value is always finite, within [min, max] and on the step grid ----------------

HOSTILE_VALUES = [
    1e308, -1e308, 10**99, -(10**98), 5e-324, -5e-324, 1e-300, -0.0, 0.0,
    float("nan"), float("inf"), float("-inf"), "7", "", "nan", True, False, None, [], {},
    3.14159, 2.25, 2.2499999, 9.99, 9.76, -9.76, -10.25, 10.25, 0.30000000000000004, 1 / 3,
    7, -3, 123456789.123,
]  # fmt: skip


async def test_invariant_1_stored_value_finite_in_range_on_grid(make_board, connect_client):
    board = make_board(
        sliders=[
            {"slug": "half", "min": -10, "max": 10, "step": 0.5, "value": 0},
            {"slug": "tenth", "min": 0, "max": 1, "step": 0.1, "value": 0.5},
            {"slug": "odd", "min": 0.3, "max": 9.9, "step": 0.7, "value": 0.3},
        ]
    )
    client = await connect_client(board.slug)
    for slider_id in ("half", "tenth", "odd"):
        for value in HOSTILE_VALUES:
            ack = await client.set(slider_id, value)
            assert ack["ok"] is True or ack["error"] == "invalid_value", (value, ack)
            slider = slider_row(board.slug, slider_id)
            assert_valid_stored_value(slider)
            if ack["ok"]:
                assert (ack["value"], ack["version"]) == (slider.value, slider.version)
    # The page's state agrees with the database.
    fresh = await connect_client(board.slug)
    for sent in fresh.state["sliders"]:
        slider = slider_row(board.slug, sent["id"])
        assert (sent["value"], sent["version"]) == (slider.value, slider.version)


@st.composite
def realistic_slider(draw: Any) -> tuple[float, float, float]:
    """A range and step an operator would configure: at most a million steps, |bounds| <= 1e9."""
    minimum = draw(st.one_of(st.integers(-(10**9), 10**9).map(float), st.floats(-1e9, 1e9)))
    span = draw(st.one_of(st.integers(1, 10**6).map(float), st.floats(1e-3, 1e9)))
    maximum = minimum + span
    step = draw(
        st.one_of(
            st.sampled_from([0.001, 0.01, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 0.7]),
            st.floats(span / 1e6, span * 2),
        )
    )
    assume(maximum > minimum and step > 0 and (maximum - minimum) / step <= 1e6)
    return minimum, maximum, step


ANY_VALUE = st.one_of(st.floats(), st.integers(), st.integers(-(10**400), 10**400))


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(value=ANY_VALUE, slider=realistic_slider())
def test_invariant_1_normalize_value_property(value: Any, slider: tuple[float, float, float]):
    minimum, maximum, step = slider
    try:
        result = normalize_value(value, minimum=minimum, maximum=maximum, step=step)
    except Refusal as error:
        assert error.code == "invalid_value"
        # Only what is not a finite number (as a float) is refused.
        assert isinstance(value, int) or not math.isfinite(value)
        assert not isinstance(value, int) or abs(value) > 1e308
        return
    assert isinstance(result, float)
    assert math.isfinite(result)
    assert minimum <= result <= maximum
    assert on_grid(result, minimum, maximum, step), (result, (result - minimum) / step)
    assert normalize_value(result, minimum=minimum, maximum=maximum, step=step) == result
    # It is the grid point nearest the (clamped) value: neither neighbour in range is nearer.
    clamped = min(max(float(value), minimum), maximum)
    tolerance = 1e-9 * step + 4 * math.ulp(max(abs(minimum), abs(maximum)))
    for neighbour in (result - step, result + step):
        if minimum + tolerance <= neighbour <= maximum - tolerance:
            assert abs(result - clamped) <= abs(neighbour - clamped) + tolerance, neighbour


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    value=ANY_VALUE,
    bounds=st.tuples(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    step=st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False),
)
def test_invariant_1_normalize_value_stays_in_range_for_any_valid_slider(
    value: Any, bounds: tuple[float, float], step: float
):
    """Any slider the database accepts (min < max, step > 0), however extreme: the result is
    finite and within [min, max], or the value is refused with Refusal, never another error.
    """
    minimum, maximum = sorted(bounds)
    assume(minimum < maximum)
    try:
        result = normalize_value(value, minimum=minimum, maximum=maximum, step=step)
    except Refusal as error:
        assert error.code == "invalid_value"
        return
    assert math.isfinite(result)
    assert minimum <= result <= maximum, result


# --- 2. version grows by exactly one per accepted change -------------------------------------


async def test_invariant_2_version_grows_by_one_per_accepted_change(make_board, connect_client):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 1000, "value": 0}])
    senders = [await connect_client(board.slug) for _ in range(4)]
    observer = await connect_client(board.slug)

    async def send_all(index: int, sender: BoardClient) -> list[Any]:
        # Distinct values across all senders (and not the initial 0), so each set is a change.
        return await asyncio.gather(*(sender.set("s1", 1 + index * 100 + n) for n in range(15)))

    batches = await asyncio.gather(*(send_all(i, sender) for i, sender in enumerate(senders)))
    acks = [ack for batch in batches for ack in batch]
    assert all(ack["ok"] is True for ack in acks), [a for a in acks if not a["ok"]]
    # A set still waiting behind its connection's previous one is superseded by a newer one and
    # shares its ack; every value written got its own version.
    versions = sorted({ack["version"] for ack in acks})
    assert versions == list(range(1, len(versions) + 1))  # no gap
    slider = slider_row(board.slug, "s1")
    assert slider.version == len(versions)
    # The last version belongs to the stored value.
    last = max(acks, key=lambda ack: ack["version"])
    assert slider.value == last["value"]
    # The observer heard the changes in version order, each at most once, ending with the last;
    # it may skip a version that a newer one replaced before it was sent (latest value wins).
    await wait_for_update(observer, "s1", slider.version)
    heard = [u["version"] for u in observer.of("slider:update")]
    assert heard == sorted(set(heard)) and heard[-1] == slider.version
    assert set(heard) <= set(versions)
    assert observer.stale_updates == 0


# --- 3. A client never shows an older value after a newer one ---------------------------------


async def test_invariant_3_updates_reach_each_client_in_version_order(make_board, connect_client):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 1000, "value": 0}])
    senders = [await connect_client(board.slug) for _ in range(3)]
    observer = await connect_client(board.slug)

    async def burst(index: int) -> list[Any]:
        sender = senders[index]
        return await asyncio.gather(*(sender.set("s1", 1 + index * 100 + n) for n in range(30)))

    acks = [ack for batch in await asyncio.gather(*map(burst, range(3))) for ack in batch]
    assert all(ack["ok"] for ack in acks)
    final = slider_row(board.slug, "s1")
    assert final.version == len({ack["version"] for ack in acks})  # superseded sets share one
    await wait_for_update(observer, "s1", final.version)

    for client in (*senders, observer):
        versions = [u["version"] for u in client.of("slider:update")]
        assert versions == sorted(set(versions)), versions  # strictly increasing
    assert observer.values["s1"] == (final.value, final.version)
    # Each sender's view (its acks and the others' updates) ends on the database's value too.
    for index, sender in enumerate(senders):
        own = acks[index * 30 : (index + 1) * 30]
        seen = [(u["value"], u["version"]) for u in sender.of("slider:update")]
        newest = max([*seen, *((ack["value"], ack["version"]) for ack in own)], key=lambda p: p[1])
        assert newest == (final.value, final.version)

    # A reconnect replaces the state with the latest.
    await observer.disconnect()
    observer.events.clear()
    await observer.connect()
    state = {s["id"]: s for s in observer.state["sliders"]}
    assert (state["s1"]["value"], state["s1"]["version"]) == (final.value, final.version)


# --- 4. A value is acked only after it is committed -------------------------------------------


async def test_invariant_4_acked_value_is_committed(make_board, connect_client):
    board = make_board()
    client = await connect_client(board.slug)
    for n, value in enumerate([10, 90, 11, 89, 12, 88, 13, 87, 14, 86], start=1):
        ack = await client.set("s1", value)
        assert ack == {"ok": True, "id": "s1", "value": value, "version": n}
        # A fresh read through another database connection sees it at once.
        slider = slider_row(board.slug, "s1")
        assert (slider.value, slider.version) == (value, n)


# --- 6. Bad or hostile input never crashes, corrupts, or reaches another client ---------------


def bad_slider_sets() -> list[tuple[str, Any]]:
    """(event, data) pairs: every shape of slider:set the protocol refuses, and other events."""
    nested: Any = {"id": "s1", "value": 1}
    for _ in range(100):
        nested = {"id": "s1", "value": [nested]}
    payloads: list[Any] = [
        None, "s1", 7, 7.5, True, [], ["s1", 10], {}, {"id": "s1"}, {"value": 10},
        {"id": None, "value": 10}, {"id": "", "value": 10}, {"id": 1, "value": 10},
        {"id": ["s1"], "value": 10}, {"id": {"$ne": None}, "value": 10},
        {"id": "s1' OR '1'='1", "value": 10}, {"id": "%", "value": 10}, {"id": "s%", "value": 1},
        {"id": "nope", "value": 10}, {"id": "x" * 5000, "value": 10},
        {"id": "s1", "value": None}, {"id": "s1", "value": "10"}, {"id": "s1", "value": True},
        {"id": "s1", "value": float("nan")}, {"id": "s1", "value": float("inf")},
        {"id": "s1", "value": float("-inf")}, {"id": "s1", "value": [10]},
        {"id": "s1", "value": {"valueOf": 10}}, {"id": "s1", "value": b"10"},
        {"id": b"s1", "value": 10}, b"\x00\xff" * 100, nested,
        ({"id": "s1", "value": 10}, "extra"), ({"id": "s1", "value": 10}, {"id": "s1"}),
        ("s1", 10),
    ]  # fmt: skip
    attempts = [("slider:set", payload) for payload in payloads]
    attempts += [
        ("slider:sett", {"id": "s1", "value": 10}),
        ("slider:update", {"id": "s1", "value": 10, "version": 10**6}),
        ("board:state", {"board": "x", "sliders": []}),
        ("board:presence", {"clients": -1}),
        ("message", "hello"),
        ("x" * 1000, None),
        ("__proto__", {"id": "s1", "value": 10}),
        ("slider:set\x00", {"id": "s1", "value": 10}),
    ]
    return attempts


async def test_invariant_6_hostile_input_changes_nothing_and_reaches_nobody(
    make_board, connect_client, start_server
):
    server = start_server()  # its own log, so nothing else's output is blamed on this
    board = make_board()
    hostile = await connect_client(board.slug, server=server)
    honest = await connect_client(board.slug, server=server)
    bystander = await connect_client(board.slug, server=server)

    for event, data in bad_slider_sets():
        ack = await hostile.sio.call(event, data, timeout=5)
        assert isinstance(ack, dict) and ack["ok"] is False, (event, data, ack)
        assert ack["error"] in {"bad_request", "unknown_slider", "invalid_value"}, ack
        assert isinstance(ack["message"], str)
        # Without an ack callback too (nothing to answer, nothing to break).
        await hostile.sio.emit(event, data)
    # Too big for the server's message limit: the server may drop the sender, nothing else.
    await hostile.sio.emit("slider:set", {"id": "s1", "value": 1, "pad": "x" * 100_000})

    for slug in ("s1", "s2"):
        slider = slider_row(board.slug, slug)
        assert (slider.value, slider.version) == (50, 0)
    ack = await honest.set("s1", 42)
    assert ack == {"ok": True, "id": "s1", "value": 42, "version": 1}
    await wait_for_update(bystander, "s1", 1)
    assert bystander.of("slider:update") == [{"id": "s1", "value": 42, "version": 1}]
    # Every client still has the state the server sent at connect; nothing else came.
    assert [name for name, _ in bystander.events if name == "board:state"] == ["board:state"]
    assert stored(board.slug, "s1") == (42, 1)
    assert "Traceback" not in server.log()
    assert " ERROR " not in server.log()


async def test_invariant_6_reserved_event_names_do_not_reach_lifecycle_handlers(
    make_board, connect_client, start_server
):
    """A client may put any name in an event packet, including "connect" and "disconnect".

    Those must not run the server's connect/disconnect handlers: a fake "disconnect" would drop
    the client from the presence count while it stays in the room; a fake "connect" with a forged
    environ and auth would move it to another board under a spoofed address.
    """
    server = start_server()
    board = make_board()
    elsewhere = make_board()
    hostile = await connect_client(board.slug, server=server)
    watcher = await connect_client(board.slug, server=server)
    await watcher.wait_for(lambda: watcher.of("board:presence")[-1:] == [{"clients": 2}])

    await hostile.sio.emit("disconnect", "client namespace disconnect")
    await hostile.sio.emit(
        "connect", ({"asgi.scope": {"client": ["203.0.113.9", 1]}}, {"board": elsewhere.slug})
    )
    await hostile.sio.emit("connect")
    await hostile.sio.emit("connect", ("not an environ", None))

    # The hostile client is still an ordinary client of its own board...
    ack = await hostile.set("s1", 5)
    assert ack == {"ok": True, "id": "s1", "value": 5, "version": 1}
    assert stored(elsewhere.slug, "s1") == (50, 0)
    # ...and counted once: a third client's arrival is announced as 3.
    third = await connect_client(board.slug, server=server)
    assert third.state["clients"] == 3
    await watcher.wait_for(lambda: watcher.of("board:presence")[-1:] == [{"clients": 3}])
    assert all(p["clients"] >= 2 for p in watcher.of("board:presence"))
    assert hostile.of("board:state")[1:] == []  # no state of another board was sent to it
    assert "203.0.113.9" not in server.log()
    assert "Traceback" not in server.log()


async def test_invariant_6_malformed_packets_are_refused_quietly(
    make_board, connect_client, start_server
):
    """Socket.IO packets no client library would produce, written straight to the websocket."""
    server = start_server()
    board = make_board()
    hostile = await connect_client(board.slug, server=server)
    honest = await connect_client(board.slug, server=server)
    bystander = await connect_client(board.slug, server=server)
    packets = [
        "2",  # an event with no payload
        "2[]",  # no event name
        "2{}",  # not an array
        '2"slider:set"',
        "2null",
        "2[1,2]",  # a number as the event name
        '2["slider:set",{"id":"s1","value":' + "9" * 101 + "}]",  # an integer too long to parse
        "2" + "[" * 5000 + "]" * 5000,  # nesting deeper than the parser's recursion limit
        '2["slider:set",{"id":"s1","value":1',  # cut off
        "3",  # an ack for nothing
        '399["x"]',
        "6",  # a binary ack announced with no attachments
        "9",  # no such packet type
        "\x00",
        "",
    ]
    for raw in packets:
        await hostile.sio.eio.send(raw)

    ack = await honest.set("s1", 42)
    assert ack == {"ok": True, "id": "s1", "value": 42, "version": 1}
    await wait_for_update(bystander, "s1", 1)
    assert bystander.of("slider:update") == [{"id": "s1", "value": 42, "version": 1}]
    assert stored(board.slug, "s1") == (42, 1)
    assert "Traceback" not in server.log()


# --- 7. Text from the database is escaped in HTML ---------------------------------------------

HOSTILE_NAME = "<script>alert(1)</script>\"'&"


async def test_invariant_7_names_are_escaped_in_html(asgi_server, make_board, connect_client):
    board = make_board(
        name=HOSTILE_NAME,
        sliders=[{"slug": "s1", "name": HOSTILE_NAME}, {"slug": "s2", "name": "x" + HOSTILE_NAME}],
    )
    escaped = html.escape(HOSTILE_NAME)  # &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;
    pages = {}
    for path in (f"/b/{board.slug}/", "/"):
        with urllib.request.urlopen(asgi_server.url + path, timeout=10) as response:
            assert response.status == 200
            pages[path] = response.read().decode()
        assert "<script>alert(1)" not in pages[path], path
        assert escaped in pages[path], path
    # The board page names the board (title, heading) and both sliders (labels).
    assert pages[f"/b/{board.slug}/"].count(escaped) >= 4

    # On the wire the names are data, verbatim: escaping them is the page's job.
    client = await connect_client(board.slug)
    assert client.state["name"] == HOSTILE_NAME
    assert [s["name"] for s in client.state["sliders"]] == [HOSTILE_NAME, "x" + HOSTILE_NAME]


# --- 8. Sets from one connection take effect in the order they were sent ----------------------


async def test_invariant_8_sets_from_one_connection_apply_in_send_order(make_board, connect_client):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 0}])
    sender = await connect_client(board.slug)
    observer = await connect_client(board.slug)
    values = list(range(1, 101))
    # asyncio.gather starts the calls in order, and each one queues its packet before its first
    # real suspension: AsyncClient.call -> emit -> _send_packet -> engineio's send puts the packet
    # on an unbounded asyncio.Queue (no waiting), and one writer task sends that queue in order.
    acks = await asyncio.gather(*(sender.set("s1", value) for value in values))

    assert [ack["ok"] for ack in acks] == [True] * 100
    # A set still waiting behind the previous one is superseded by a newer one: it is never
    # written and its ack is the newer one's. So each ack holds its own value or a later one.
    assert all(ack["value"] >= value for ack, value in zip(acks, values, strict=True))
    written = list({ack["version"]: ack["value"] for ack in acks}.items())
    assert [version for version, _ in written] == list(range(1, len(written) + 1))
    assert [value for _, value in written] == sorted(value for _, value in written)  # send order
    slider = slider_row(board.slug, "s1")
    assert (slider.value, slider.version) == (100, len(written))
    last = await wait_for_update(observer, "s1", len(written))
    assert observer.of("slider:update")[-1] == last
    assert last == {"id": "s1", "value": 100, "version": len(written)}
    heard = [u["value"] for u in observer.of("slider:update")]
    assert heard == sorted(set(heard)) and set(heard) <= {value for _, value in written}
