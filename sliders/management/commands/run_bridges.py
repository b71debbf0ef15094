"""`manage.py run_bridges`: the one process that sends to OSC desks (and other bridges).

With REDIS_URL set, web processes never run the bridges: this command does, next to them,
hearing their notices through Redis, so each change goes out once per target. Run exactly one.
Without REDIS_URL it refuses: the one web process runs the bridges itself.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sliders import notices
from sliders.bridges.runner import Runner
from sliders.cluster import get_cluster

logger = logging.getLogger("sliders.bridges")


class Command(BaseCommand):
    help = (
        "Run the bridges (OSC, ...) for every web process: with REDIS_URL, run exactly one of "
        "these next to the web processes. Stops on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="Serve this process's Prometheus metrics (the bridges') on this port.",
        )
        parser.add_argument(
            "--metrics-host",
            default="127.0.0.1",
            help="The address the metrics port binds to (default 127.0.0.1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "run_bridges needs REDIS_URL. Without Redis there is one web process, and it "
                "runs the bridges itself (runserver, uvicorn): do not start this command."
            )
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            from sliders import metrics  # noqa: F401  (registers the bridges' metrics)

            start_http_server(options["metrics_port"], addr=options["metrics_host"])
        asyncio.run(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        runner = Runner()
        cluster = get_cluster()
        # Our own changes (values that came in over OSC) are announced on this loop: handled
        # here first, then published to the web processes.
        notices.attach_loop(loop)
        await cluster.start(runner.on_notice)
        await runner.start()
        logger.info("run_bridges is running (notices: %s)", cluster.describe())
        try:
            await stopping.wait()
        finally:
            logger.info("run_bridges is stopping")
            await runner.stop()
            await cluster.stop()
            notices.attach_loop(None)
