"""The wire protocol v1 against a live uvicorn, with real Socket.IO clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import socketio

from tests.support.checks import assert_error
from tests.support.clients import BoardClient
from tests.support.database import stored

pytestmark = pytest.mark.live


async def barrier(sender: BoardClient, *receivers: BoardClient, value: float) -> None:
    """A set on s2 that every receiver must see; anything sent before it has arrived by then."""
    ack = await sender.set("s2", value)
    assert ack["ok"] is True, ack
    for receiver in receivers:
        await receiver.wait_for(
            lambda r=receiver: any(
                u["id"] == "s2" and u["version"] == ack["version"] for u in r.of("slider:update")
            )
        )


# --- board:state ----------------------------------------------------------------------------


async def test_board_state_on_connect(make_board, connect_client):
    board = make_board(name="Stage")
    client = await connect_client(board.slug)
    state = client.state
    assert state["board"] == board.slug
    assert state["name"] == "Stage"
    assert state["can_edit"] is True
    assert state["clients"] == 1
    assert [s["id"] for s in state["sliders"]] == ["s1", "s2"]
    assert state["sliders"][0] == {
        "id": "s1", "name": "Slider 1", "min": 0.0, "max": 100.0, "step": 1.0,
        "value": 50.0, "version": 0, "unit": "", "precision": None,
    }  # fmt: skip


async def test_board_state_shape_display_order_and_client_count(make_board, connect_client):
    # Created in the order a, b, c, but displayed by position: b, c, a.
    board = make_board(
        name="Ordered",
        sliders=[
            {"slug": "a", "name": "Alpha", "position": 2, "min": -5, "max": 5, "step": 0.5},
            {"slug": "b", "name": "Beta", "position": 0, "value": 7},
            {"slug": "c", "name": "Gamma", "position": 1, "min": 10, "max": 20, "value": 12},
        ],
    )
    first = await connect_client(board.slug)
    second = await connect_client(board.slug)

    assert first.state["clients"] == 1
    state = second.state
    assert set(state) == {
        "board",
        "name",
        "can_edit",
        "clients",
        "sliders",
        "presets",
        "hand",
        "hands",
        "server_time",
    }
    assert abs(state["server_time"] / 1000 - time.time()) < 5  # the server clock, in ms
    assert state["hands"] == {} and state["hand"] != first.state["hand"]
    assert state["clients"] == 2
    assert [s["id"] for s in state["sliders"]] == ["b", "c", "a"]
    display = {"unit": "", "precision": None}
    assert state["sliders"] == [
        {"id": "b", "name": "Beta", "min": 0, "max": 100, "step": 1, "value": 7, "version": 0}
        | display,
        {"id": "c", "name": "Gamma", "min": 10, "max": 20, "step": 1, "value": 12, "version": 0}
        | display,
        {"id": "a", "name": "Alpha", "min": -5, "max": 5, "step": 0.5, "value": -5, "version": 0}
        | display,
    ]
    for slider in state["sliders"]:
        assert isinstance(slider["version"], int)
        for key in ("min", "max", "step", "value"):
            assert isinstance(slider[key], (int, float)) and not isinstance(slider[key], bool)


@pytest.mark.parametrize("auth", [None, {}, {"board": None}, {"board": ""}])
async def test_no_board_in_auth_means_the_default_board(make_board, connect_client, auth):
    make_board("main", name="Main board")
    make_board("other", name="Other board")
    client = await connect_client(None, auth=auth)
    assert client.state["board"] == "main"
    assert client.state["name"] == "Main board"


async def test_unknown_board_is_refused_with_a_reason(asgi_server, make_board):
    make_board()
    client = BoardClient(asgi_server.url, "no-such-board")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    await client.disconnect()
    assert not client.sio.connected
    assert client.of("board:state") == []
    assert len(client.connect_errors) == 1
    refusal = client.connect_errors[0]
    assert refusal["data"] == {"code": "unknown_board"}
    assert "no-such-board" in refusal["message"]


@pytest.mark.parametrize(
    "auth",
    # (A bare number cannot be sent: Socket.IO reads digits after the packet type as an ack id.)
    ["main", ["main"], True, {"board": 42}, {"board": ["main"]}, {"board": {"slug": "main"}}],
    ids=["string", "list", "boolean", "board-number", "board-list", "board-object"],
)
async def test_malformed_auth_is_refused_with_bad_request(asgi_server, make_board, auth):
    make_board("main")
    client = BoardClient(asgi_server.url, None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth=auth)
    await client.disconnect()
    assert client.of("board:state") == []
    assert len(client.connect_errors) == 1
    assert client.connect_errors[0]["data"] == {"code": "bad_request"}
    assert isinstance(client.connect_errors[0]["message"], str)


# --- slider:set and slider:update -----------------------------------------------------------


async def test_set_acks_and_reaches_others_not_sender(make_board, connect_client):
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    ack = await sender.set("s1", 73)
    assert ack == {"ok": True, "id": "s1", "value": 73.0, "version": 1}
    update = await receiver.wait_for(lambda: receiver.of("slider:update"))
    assert update == [{"id": "s1", "value": 73.0, "version": 1}]
    ack = await sender.set("s2", 10)  # a later event; the sender must not have had the first one
    assert ack == {"ok": True, "id": "s2", "value": 10.0, "version": 1}
    await receiver.wait_for(lambda: len(receiver.of("slider:update")) == 2)
    assert sender.of("slider:update") == []


async def test_update_reaches_every_other_client_once(make_board, connect_client):
    board = make_board()
    other_board = make_board()
    sender = await connect_client(board.slug)
    receivers = [await connect_client(board.slug) for _ in range(3)]
    stranger = await connect_client(other_board.slug)

    ack = await sender.set("s1", 12)
    assert ack == {"ok": True, "id": "s1", "value": 12, "version": 1}
    assert isinstance(ack["version"], int)
    await barrier(receivers[0], sender, *receivers[1:], value=99)
    for receiver in receivers:
        assert receiver.of("slider:update")[0] == {"id": "s1", "value": 12, "version": 1}
        assert [u["id"] for u in receiver.of("slider:update")].count("s1") == 1
    # The sender saw only the barrier's update, never its own change.
    assert [u["id"] for u in sender.of("slider:update")] == ["s2"]
    # Another board's clients hear nothing: check after a round-trip on their own board.
    await stranger.set("s1", 1)
    assert stranger.of("slider:update") == []
    assert stored(other_board.slug, "s1") == (1, 1)


async def test_late_joiner_sees_latest_value_and_version(make_board, connect_client):
    board = make_board()
    sender = await connect_client(board.slug)
    for value in (10, 20, 30, 40):
        await sender.set("s1", value)
    await sender.set("s2", 5)
    late = await connect_client(board.slug)
    sliders = {s["id"]: s for s in late.state["sliders"]}
    assert (sliders["s1"]["value"], sliders["s1"]["version"]) == (40, 4)
    assert (sliders["s2"]["value"], sliders["s2"]["version"]) == (5, 1)
    assert late.state["clients"] == 2


async def test_equal_value_is_acked_with_current_version_and_not_broadcast(
    make_board, connect_client
):
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    assert await sender.set("s1", 73) == {"ok": True, "id": "s1", "value": 73, "version": 1}
    # The same value, and a value that snaps to it, change nothing.
    assert await sender.set("s1", 73) == {"ok": True, "id": "s1", "value": 73, "version": 1}
    assert await sender.set("s1", 73.2) == {"ok": True, "id": "s1", "value": 73, "version": 1}
    # The untouched slider's initial value, too.
    assert await sender.set("s2", 50) == {"ok": True, "id": "s2", "value": 50, "version": 0}
    assert stored(board.slug, "s1") == (73, 1)
    assert stored(board.slug, "s2") == (50, 0)
    await barrier(sender, receiver, value=1)
    assert receiver.of("slider:update") == [
        {"id": "s1", "value": 73, "version": 1},
        {"id": "s2", "value": 1, "version": 1},
    ]


# --- Errors ---------------------------------------------------------------------------------


async def assert_refused_without_effect(
    board_slug: str,
    sender: BoardClient,
    receiver: BoardClient,
    attempts: list[tuple[Any, str]],
    *,
    send: Any,
) -> None:
    """Each attempt is acked with its error code and leaves the database and others untouched."""
    before = {slug: stored(board_slug, slug) for slug in ("s1", "s2")}
    for attempt, code in attempts:
        ack = await send(attempt)
        assert_error(ack, code)
        assert {slug: stored(board_slug, slug) for slug in ("s1", "s2")} == before, attempt
    # A good change made after all of them is the only update the receiver ever sees.
    ack = await sender.set("s2", 3)
    assert ack["ok"] is True and ack["version"] == before["s2"][1] + 1
    await receiver.wait_for(lambda: receiver.of("slider:update"))
    assert receiver.of("slider:update") == [{"id": "s2", "value": 3, "version": ack["version"]}]
    assert sender.of("slider:update") == []


async def test_unknown_slider(make_board, connect_client):
    board = make_board()
    make_board(sliders=[{"slug": "elsewhere"}])  # a slider of another board is not reachable
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    ids = ["nope", "S1", "s1 ", " s1", "elsewhere", "s1/../s2", "x" * 2000, "s1\x00"]
    await assert_refused_without_effect(
        board.slug,
        sender,
        receiver,
        [(slider_id, "unknown_slider") for slider_id in ids],
        send=lambda slider_id: sender.set(slider_id, 10),
    )


async def test_invalid_value(make_board, connect_client):
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    values = [
        "10", "abc", "", None, True, False, float("nan"), float("inf"), float("-inf"),
        [], [10], {}, {"value": 10},
    ]  # fmt: skip
    await assert_refused_without_effect(
        board.slug,
        sender,
        receiver,
        [(value, "invalid_value") for value in values],
        send=lambda value: sender.set("s1", value),
    )


async def test_invalid_value_sent_as_raw_json_literals(make_board, connect_client):
    """NaN, Infinity and 1e999 written into the packet by hand, as a hostile client would."""
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)

    async def send_raw(literal: str) -> Any:
        arrived: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack_id = sender.sio._generate_ack_id("/", lambda *data: arrived.set_result(data))
        await sender.sio.eio.send(f'2{ack_id}["slider:set",{{"id":"s1","value":{literal}}}]')
        data = await asyncio.wait_for(arrived, 5)
        return data[0] if data else None

    await assert_refused_without_effect(
        board.slug,
        sender,
        receiver,
        [(literal, "invalid_value") for literal in ("NaN", "Infinity", "-Infinity", "1e999")],
        send=send_raw,
    )


async def test_forbidden_on_a_read_only_board(make_board, connect_client):
    board = make_board(edit_access="nobody")
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    assert sender.state["can_edit"] is False
    for slider_id, value in [("s1", 10), ("s1", 50), ("s2", 0)]:
        assert_error(await sender.set(slider_id, value), "forbidden")
    assert stored(board.slug, "s1") == (50, 0)
    assert stored(board.slug, "s2") == (50, 0)
    assert_error(await receiver.set("s1", 1), "forbidden")
    # Open the board, and a change after the refused ones is the only update the receiver sees.
    type(board).objects.filter(pk=board.pk).update(edit_access="anyone")
    await barrier(sender, receiver, value=1)
    assert receiver.of("slider:update") == [{"id": "s2", "value": 1, "version": 1}]
    assert stored(board.slug, "s1") == (50, 0)


async def test_bad_request(make_board, connect_client):
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    call = sender.sio.call
    attempts = [
        # The payload is not one object.
        (lambda: call("slider:set", "s1", timeout=5), "not-an-object: string"),
        (lambda: call("slider:set", 5, timeout=5), "not-an-object: number"),
        (lambda: call("slider:set", ["s1", 10], timeout=5), "not-an-object: list"),
        (lambda: call("slider:set", timeout=5), "no payload"),
        (lambda: call("slider:set", ({"id": "s1", "value": 10}, "extra"), timeout=5), "extra"),
        (lambda: call("slider:set", ({"id": "s1", "value": 10}, None), timeout=5), "extra None"),
        # Missing or unusable fields.
        (lambda: call("slider:set", {"value": 10}, timeout=5), "missing id"),
        (lambda: call("slider:set", {"id": "s1"}, timeout=5), "missing value"),
        (lambda: call("slider:set", {}, timeout=5), "empty object"),
        (lambda: sender.set(None, 10), "id None"),
        (lambda: sender.set("", 10), "id empty"),
        (lambda: sender.set(1, 10), "id number"),
        (lambda: sender.set(["s1"], 10), "id list"),
        (lambda: sender.set({"id": "s1"}, 10), "id object"),
        # Events the protocol does not have.
        (lambda: call("slider:sett", {"id": "s1", "value": 10}, timeout=5), "unknown event"),
        (lambda: call("board:state", {"id": "s1", "value": 10}, timeout=5), "server event"),
        (lambda: call("slider:update", {"id": "s1", "value": 10, "version": 99}, timeout=5), "u"),
    ]
    await assert_refused_without_effect(
        board.slug,
        sender,
        receiver,
        [(send, "bad_request") for send, _label in attempts],
        send=lambda send: send(),
    )


async def test_rate_limited(start_server, make_board, connect_client):
    server = start_server(env={"SLIDER_SET_RATE": "1", "SLIDER_SET_BURST": "5"})
    board = make_board(sliders=[{"slug": "s1", "value": 0}, {"slug": "s2", "value": 0}])
    sender = await connect_client(board.slug, server=server)
    receiver = await connect_client(board.slug, server=server)
    values = list(range(1, 31))
    acks = await asyncio.gather(*(sender.set("s1", value) for value in values))

    accepted = [ack for ack in acks if ack.get("ok") is True]
    refused = [ack for ack in acks if ack.get("ok") is not True]
    for ack in refused:
        assert_error(ack, "rate_limited")
    # The bucket starts full, so the first five (sent and handled in order) go through; at one
    # token a second, 30 sets cannot all be accepted in the time they take.
    assert all(ack.get("ok") is True for ack in acks[:5]), acks[:5]
    assert refused, "a burst of 30 sets against a burst size of 5 was never limited"
    # A set still waiting when a newer one for the slider arrives is superseded: it shares the
    # newer one's ack. So versions never go back, and each written one is one higher.
    versions = [ack["version"] for ack in accepted]
    assert versions == sorted(versions)
    accepted = list({ack["version"]: ack for ack in accepted}.values())
    assert [ack["version"] for ack in accepted] == list(range(1, len(accepted) + 1))
    assert {ack["value"] for ack in accepted} <= set(values)
    value, version = stored(board.slug, "s1")
    assert value in {ack["value"] for ack in accepted}
    assert (value, version) == (accepted[-1]["value"], accepted[-1]["version"])
    # Only accepted changes were broadcast.
    await barrier(receiver, value=7)
    await receiver.wait_for(lambda: len(receiver.of("slider:update")) >= len(accepted))
    assert [u for u in receiver.of("slider:update") if u["id"] == "s1"] == [
        {"id": "s1", "value": ack["value"], "version": ack["version"]} for ack in accepted
    ]
    assert "Traceback" not in server.log()


# --- Presence -------------------------------------------------------------------------------


def last_presence(client: BoardClient) -> int | None:
    presence = client.of("board:presence")
    return presence[-1]["clients"] if presence else None


async def test_presence_on_join_and_leave(make_board, connect_client):
    board = make_board()
    first = await connect_client(board.slug)
    second = await connect_client(board.slug)
    for client in (first, second):
        await client.wait_for(lambda c=client: last_presence(c) == 2)
    seen = len(first.of("board:presence"))
    await second.disconnect()
    await first.wait_for(lambda: any(p["clients"] == 1 for p in first.of("board:presence")[seen:]))
    assert last_presence(first) == 1


async def test_presence_is_coalesced(make_board, connect_client):
    board = make_board()
    first = await connect_client(board.slug)
    await first.wait_for(lambda: last_presence(first) == 1)
    seen = len(first.of("board:presence"))

    others = await asyncio.gather(*(connect_client(board.slug) for _ in range(20)))
    await first.wait_for(lambda: last_presence(first) == 21)
    after_joins = first.of("board:presence")[seen:]
    assert len(after_joins) <= 5, after_joins
    assert after_joins[-1] == {"clients": 21}
    await others[-1].wait_for(lambda: last_presence(others[-1]) == 21)

    seen = len(first.of("board:presence"))
    await asyncio.gather(*(other.disconnect() for other in others))
    await first.wait_for(lambda: last_presence(first) == 1)
    assert len(first.of("board:presence")[seen:]) <= 5, first.of("board:presence")[seen:]


# --- Clamping and snapping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slider", "sent", "expected"),
    [
        ({"min": 0, "max": 100, "step": 1}, 150, 100),
        ({"min": 0, "max": 100, "step": 1}, -5, 0),
        ({"min": 0, "max": 100, "step": 1}, 10**99, 100),
        ({"min": 0, "max": 100, "step": 1}, -1e308, 0),
        ({"min": 0, "max": 100, "step": 1}, 33.4, 33),
        ({"min": 0, "max": 100, "step": 1}, 33.6, 34),
        ({"min": 0, "max": 100, "step": 1}, 5e-324, 0),
        ({"min": 0, "max": 1, "step": 0.1}, 0.30000000000000004, 0.3),
        ({"min": 0, "max": 1, "step": 0.1}, 0.7000000000000001, 0.7),
        ({"min": 0, "max": 1, "step": 0.1}, 0.349, 0.3),
        ({"min": -1, "max": 1, "step": 0.25}, -0.6, -0.5),
        ({"min": 5, "max": 50, "step": 10}, 50, 45),  # max is off the grid: stay on it
        ({"min": 5, "max": 50, "step": 10}, 21, 25),
    ],
)
async def test_clamped_and_snapped_value_on_the_wire(
    make_board, connect_client, slider, sent, expected
):
    start = slider["min"] + slider["step"]  # on the grid and different from every expected value
    board = make_board(sliders=[{"slug": "s1", "value": start, **slider}, {"slug": "s2"}])
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    ack = await sender.set("s1", sent)
    assert ack == {"ok": True, "id": "s1", "value": expected, "version": 1}
    assert repr(ack["value"]) == repr(float(expected))  # 0.3, not 0.30000000000000004
    update = await receiver.wait_for(lambda: receiver.of("slider:update"))
    assert update == [{"id": "s1", "value": expected, "version": 1}]
    assert stored(board.slug, "s1") == (expected, 1)
