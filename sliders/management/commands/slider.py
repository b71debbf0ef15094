"""Read or set a slider from a shell: `manage.py slider get|set <board> <slider> [value]`."""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sliders import services
from sliders.models import AuditEntry, Slider
from sliders.templatetags.slider_numbers import plain_number


class Command(BaseCommand):
    help = (
        "Read or set a slider's value. 'set' goes through the same service as the board page: "
        "clamped to the range, snapped to the step, versioned, audited as 'command line "
        "(<login>@<machine>)', and sent to open pages (through Redis; without REDIS_URL only "
        "new page loads see it)."
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

    def handle(self, *args: Any, **options: Any) -> None:
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
