"""Read, set or watch sliders from a shell: `manage.py slider get|set|watch ...`.

`get` and `set` work on the database through the services; `watch` is a client of a running
server (the Python client, slidersync_client) and prints each change as it happens.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from slidersync_client import Board, Change, SliderSyncError

from sliders import services
from sliders.models import AuditEntry, Slider
from sliders.templatetags.slider_numbers import plain_number


class Command(BaseCommand):
    help = (
        "Read or set a slider's value. 'set' goes through the same service as the board page: "
        "clamped to the range, snapped to the step, versioned, audited as 'command line "
        "(<login>@<machine>)', and sent to open pages (through Redis; without REDIS_URL only "
        "new page loads see it). "
        "'watch' connects to a running server and prints every change of a board live."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        get = actions.add_parser("get", help="Print a slider's value and version.")
        put = actions.add_parser("set", help="Set a slider's value.")
        for action in (get, put):
            action.add_argument("board", help="The board's slug, e.g. main")
            action.add_argument("slider", help="The slider's id on that board, e.g. s1")
            action.add_argument("--json", action="store_true", help="Print JSON.")
        put.add_argument("value", help="A number; it is clamped and snapped like any other set.")
        watch = actions.add_parser(
            "watch", help="Print each change of a board's sliders as it happens (Ctrl-C stops)."
        )
        watch.add_argument("board", help="The board's slug, e.g. main")
        watch.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="The running server's address (default: http://127.0.0.1:8000).",
        )
        watch.add_argument(
            "--token",
            default=os.environ.get("SLIDERSYNC_TOKEN"),
            help="An API token (default: $SLIDERSYNC_TOKEN); without one, watch as anonymous.",
        )
        watch.add_argument("--json", action="store_true", help="Print one JSON object a line.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "watch":
            try:
                asyncio.run(
                    self.watch(options["url"], options["board"], options["token"], options["json"])
                )
            except KeyboardInterrupt:
                pass
            except SliderSyncError as error:
                raise CommandError(error.message) from None
            return
        if options["action"] == "get":
            slider = (
                Slider.objects.filter(board__slug=options["board"], slug=options["slider"])
                .select_related("board")
                .first()
            )
            if slider is None:
                raise CommandError(f"There is no slider {options['slider']!r} on that board.")
            value, version = slider.value, slider.version
        else:
            try:
                number = float(options["value"])
            except ValueError:
                raise CommandError(f"{options['value']!r} is not a number.") from None
            if not math.isfinite(number):
                raise CommandError("The value must be a finite number.")
            try:
                change = services.set_slider_value(
                    board=options["board"],
                    slider_id=options["slider"],
                    value=number,
                    # Shell access is an operator's: the board's edit access does not apply.
                    actor=services.Actor(source=AuditEntry.Source.COMMAND, operator=True),
                )
            except services.Refusal as error:
                raise CommandError(error.message) from None
            value, version = change.value, change.version
            if not settings.REDIS_URL:
                self.stderr.write(
                    "Stored. Without REDIS_URL this command cannot reach the running server: "
                    "open pages show the new value when they next load or reconnect."
                )
        if options["json"]:
            self.stdout.write(json.dumps({"value": value, "version": version}))
        else:
            self.stdout.write(f"{plain_number(value)} (version {version})")

    async def watch(self, url: str, board: str, token: str | None, as_json: bool) -> None:
        """Print a line per change of `board` at `url` until interrupted, or the board ends."""
        async with Board.connect(url, board, token) as connected:
            self.stderr.write(f"Watching {connected.name!r} at {url}; Ctrl-C stops.")
            self.stderr.flush()
            async for change in connected.changes():
                self.stdout.write(self.change_line(change, as_json))
                self.stdout.flush()  # one line as it happens, into a pipe too

    @staticmethod
    def change_line(change: Change, as_json: bool) -> str:
        """`22:15:03.123 s1 42.5 (version 8)`, or that as JSON with the full local time."""
        now = datetime.now().astimezone()
        if as_json:
            return json.dumps(
                {
                    "time": now.isoformat(timespec="milliseconds"),
                    "slider": change.slider,
                    "value": change.value,
                    "version": change.version,
                }
            )
        clock = now.strftime("%H:%M:%S.%f")[:-3]
        return f"{clock} {change.slider} {plain_number(change.value)} (version {change.version})"
