"""Invariant 4: a value is acked only after it is committed.

Kill the server (SIGKILL: no shutdown, nothing flushed) right after an ack; the value and its
version are there when a new server starts on the same database.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.live


async def test_invariant_4_acked_value_survives_sigkill(start_server, make_board, connect_client):
    from sliders.models import Slider

    board = make_board(
        sliders=[{"slug": "s1", "min": 0, "max": 1000, "value": 0}, {"slug": "s2", "value": 50}]
    )
    server = start_server()
    expected = {"s1": (0, 0), "s2": (50, 0)}
    for round_number, value in enumerate([17, 941, 3, 500, 999], start=1):
        client = await connect_client(board.slug, server=server)
        state = {s["id"]: (s["value"], s["version"]) for s in client.state["sliders"]}
        assert state == expected, f"round {round_number}: the last acked values are not there"

        # Two sets, the second on the other slider, acked and killed at once.
        ack = await client.set("s1", value)
        assert ack == {"ok": True, "id": "s1", "value": value, "version": round_number}
        other = await client.set("s2", round_number)
        assert other == {"ok": True, "id": "s2", "value": round_number, "version": round_number}
        server.kill()
        assert server.process is not None and server.process.returncode == -9

        expected = {"s1": (value, round_number), "s2": (round_number, round_number)}
        server = start_server(env=server.env)

    client = await connect_client(board.slug, server=server)
    state = {s["id"]: (s["value"], s["version"]) for s in client.state["sliders"]}
    assert state == expected == {"s1": (999, 5), "s2": (5, 5)}
    row = Slider.objects.get(board__slug=board.slug, slug="s1")
    assert (row.value, row.version) == (999, 5)
