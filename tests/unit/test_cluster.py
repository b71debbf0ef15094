"""The in-process cluster (sliders/cluster.py `LocalCluster`) and the notice format.

`RedisCluster` needs Redis and several processes: tests/test_scaleout.py and tests/test_faults.py.
"""

from __future__ import annotations

import json
from typing import Any

from sliders.cluster import LocalCluster, create_cluster, encode_notice

Notices = list[tuple[str, str, Any]]


def recorder(notices: Notices) -> Any:
    async def handle(kind: str, board: str, data: Any) -> None:
        notices.append((kind, board, data))

    return handle


async def test_notices_reach_the_handler_only_while_started() -> None:
    cluster, notices = LocalCluster(), []
    await cluster.notify("board", "stage")  # not started: nobody to tell
    await cluster.start(recorder(notices))
    update = {"updates": [{"id": "s1", "value": 5.0, "version": 2}], "origin": None}
    await cluster.notify("update", "stage", update)
    await cluster.notify("presence", "foyer")
    await cluster.stop()
    await cluster.notify("board", "stage")
    assert notices == [("update", "stage", update), ("presence", "foyer", None)]


async def test_the_local_count_is_the_total() -> None:
    cluster = LocalCluster()
    assert await cluster.total_count("stage") == 0
    await cluster.report_count("stage", 3)
    await cluster.report_count("foyer", 1)
    await cluster.report_count("stage", 2)
    assert (await cluster.total_count("stage"), await cluster.total_count("foyer")) == (2, 1)


def test_each_cluster_has_its_own_process_id_and_says_what_it_is() -> None:
    first, second = LocalCluster(), LocalCluster()
    assert first.process_id != second.process_id
    assert first.describe() == "in-process"


def test_without_redis_the_cluster_is_in_process(settings: Any) -> None:
    settings.REDIS_URL = ""
    assert type(create_cluster()) is LocalCluster


def test_a_notice_on_the_channel_is_json_with_its_sender() -> None:
    encoded = encode_notice("board", "stage", {"n": 1}, "host:1:abc")
    assert json.loads(encoded) == {
        "kind": "board", "board": "stage", "data": {"n": 1}, "from": "host:1:abc",
    }  # fmt: skip
    assert json.loads(encode_notice("resync", "")) == {
        "kind": "resync", "board": "", "data": None, "from": None,
    }  # fmt: skip
