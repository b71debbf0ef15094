"""The wire protocol v1 against a live uvicorn, with real Socket.IO clients."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.live


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
        "value": 50.0, "version": 0,
    }  # fmt: skip


async def test_set_acks_and_reaches_others_not_sender(make_board, connect_client):
    board = make_board()
    sender = await connect_client(board.slug)
    receiver = await connect_client(board.slug)
    ack = await sender.set("s1", 73)
    assert ack == {"ok": True, "id": "s1", "value": 73.0, "version": 1}
    update = await receiver.wait_for(lambda: receiver.of("slider:update"))
    assert update == [{"id": "s1", "value": 73.0, "version": 1}]
    await sender.set("s2", 10)  # a later event; the sender must not have had the first one
    await receiver.wait_for(lambda: len(receiver.of("slider:update")) == 2)
    assert sender.of("slider:update") == []
