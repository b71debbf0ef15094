"""/metrics: Prometheus figures that move when people use the boards, for allowed addresses only."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels without `process`): value} from a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "process"))
            found[(sample.name, labels)] = sample.value
    return found


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(await response.text())


@pytest.mark.live
async def test_the_counters_move_when_sets_happen(make_board, connect_client, asgi_server):
    board = make_board(sliders=[{"slug": "s1", "min": 0, "max": 100, "value": 0}])
    setter = await connect_client(board.slug)
    watcher = await connect_client(board.slug)
    before = await scrape(asgi_server.url)

    for value in (10, 20, 30):
        assert (await setter.set("s1", value))["ok"] is True
    assert (await setter.set("s1", "loud"))["error"] == "invalid_value"
    assert (await setter.set("nope", 1))["error"] == "unknown_slider"
    async with aiohttp.ClientSession() as http:  # the HTTP API's sets count too
        url = f"{asgi_server.url}/api/boards/{board.slug}/sliders/s1"
        async with http.put(url, json={"value": 40}) as response:
            assert response.status == 200
    await watcher.wait_for(lambda: watcher.values["s1"][0] == 40)
    after = await scrape(asgi_server.url)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("slidersync_sets_total", result="ok") == 4
    assert moved("slidersync_sets_total", result="invalid_value") == 1
    assert moved("slidersync_sets_total", result="unknown_slider") == 1
    assert after[("slidersync_clients", (("board", board.slug),))] == 2
    assert moved("slidersync_changes_published_total") == 4
    assert moved("slidersync_fanout_messages_total") >= 1  # the watcher heard at least the last
    # Its websocket was idle: the frames went straight to it (GuardedSocket.write_now).
    assert moved("slidersync_fanout_messages_written_at_once_total") >= 1
    assert moved("slidersync_fanout_updates_total") >= 1
    assert moved("slidersync_set_to_broadcast_seconds_count") == 3
    assert moved("slidersync_set_to_broadcast_seconds_sum") > 0

    await watcher.disconnect()
    await setter.wait_for(lambda: setter.of("board:presence")[-1:] == [{"clients": 1}])
    final = await scrape(asgi_server.url)
    assert final[("slidersync_clients", (("board", board.slug),))] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "allowed", "status"),
    [
        ("127.0.0.1", ["127.0.0.1", "::1"], 200),
        ("::1", ["127.0.0.1", "::1"], 200),
        ("10.1.2.3", ["127.0.0.1", "::1"], 403),
        ("10.1.2.3", ["10.0.0.0/8"], 200),
        ("10.1.2.3", [], 403),
        ("not an address", ["0.0.0.0/0"], 403),
    ],
)
def test_only_allowed_addresses_read_the_metrics(
    address: str, allowed: list[str], status: int
) -> None:
    with override_settings(METRICS_ALLOWED_IPS=allowed):
        response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == status
    body: Any = response.content.decode()
    assert ("slidersync_sets_total" in body) is (status == 200)
