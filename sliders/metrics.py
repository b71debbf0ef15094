"""Live metrics in Prometheus's text format, served at /metrics (see docs/metrics.md).

Counters that change on every message (frames sent to clients) are plain integers kept by the
fan-out and read when Prometheus scrapes, so measuring costs nothing on the hot path. Each
server process reports its own figures, labelled with its process id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sliders.cluster import get_cluster
from sliders.realtime.connections import clients_per_board
from sliders.realtime.fanout import totals

SETS = Counter(
    "slidersync_sets",
    "Slider sets handled (slider:set and the HTTP API), by result: ok or the refusal's code.",
    ["result"],
)
SET_TO_BROADCAST = Histogram(
    "slidersync_set_to_broadcast_seconds",
    "From receiving a slider:set to handing the committed change to the board's fan-out.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# The bridges (sliders/bridges/), per target ("osc:3"): in the process that runs them (the web
# process without REDIS_URL, else `run_bridges`, which serves them with --metrics-port).
BRIDGE_SENT = Counter(
    "slidersync_bridge_messages_sent",
    "Slider values a bridge target was sent (one per slider per send).",
    ["target"],
)
BRIDGE_SUPERSEDED = Counter(
    "slidersync_bridge_messages_superseded",
    "Slider values dropped before they were sent because a newer one replaced them.",
    ["target"],
)
BRIDGE_FAILURES = Counter(
    "slidersync_bridge_failures",
    "Sends to a bridge target that failed (each is retried with back-off).",
    ["target"],
)
WEBHOOK_DROPPED = Counter(
    "slidersync_webhook_deliveries_dropped",
    "Webhook events never delivered: gave_up (its attempts all failed, or the receiver refused"
    " it) or queue_full (the oldest waiting event made room for a new one).",
    ["target", "reason"],
)
BRIDGE_UP = Gauge(
    "slidersync_bridge_target_up",
    "1 while a bridge target's last send worked, 0 while it fails; absent before its first.",
    ["target"],
)


class RealtimeCollector(Collector):
    """Figures read from the realtime server's public counts when scraped."""

    def describe(self) -> Iterator[Any]:
        return iter(self._families())

    def collect(self) -> Iterator[Any]:
        clients, messages, at_once, updates, published = families = self._families()
        process = get_cluster().process_id
        for board, count in sorted(clients_per_board().items()):
            clients.add_metric([board, process], count)
        messages.add_metric([process], totals.messages)
        at_once.add_metric([process], totals.written_at_once)
        updates.add_metric([process], totals.updates)
        published.add_metric([process], totals.published)
        return iter(families)

    @staticmethod
    def _families() -> list[Any]:
        return [
            GaugeMetricFamily(
                "slidersync_clients",
                "Socket.IO connections on each board, in this process.",
                labels=["board", "process"],
            ),
            CounterMetricFamily(
                "slidersync_fanout_messages",
                "slider:update(s) messages written to clients (the broadcast fan-out).",
                labels=["process"],
            ),
            CounterMetricFamily(
                "slidersync_fanout_messages_written_at_once",
                "Of those, written straight to an idle websocket instead of queued for its writer.",
                labels=["process"],
            ),
            CounterMetricFamily(
                "slidersync_fanout_updates",
                "Slider updates inside those messages (one message may carry several sliders).",
                labels=["process"],
            ),
            CounterMetricFamily(
                "slidersync_changes_published",
                "Committed changes handed to the fan-out (from any process, via the cluster).",
                labels=["process"],
            ),
        ]


REGISTRY.register(RealtimeCollector())
