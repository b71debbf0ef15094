"""Prune the audit trail: `manage.py prune_audit --older-than 90d [--dry-run]`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from sliders import services

UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta:
    """`90d`, `12w`, `36h` as a timedelta; raises CommandError for anything else."""
    match = re.fullmatch(r"(\d{1,6})([hdw])", text.strip())
    if match is None:
        raise CommandError(
            f"--older-than takes a whole number with h, d or w (hours, days, weeks), "
            f"e.g. 90d; not {text!r}."
        )
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Delete audit trail entries older than the given age (e.g. --older-than 90d): the trail "
        "holds usernames and IP addresses and is otherwise kept for ever."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Entries whose last change is older than this: 36h, 90d, 12w.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say how many would go; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            before = timezone.now() - age(options["older_than"])
        except OverflowError:
            raise CommandError(
                f"--older-than {options['older_than']} reaches back before the year 1; "
                "no entry is that old."
            ) from None
        count = services.prune_audit_trail(before=before, dry_run=options["dry_run"])
        when = before.strftime("%Y-%m-%d %H:%M %Z")
        if options["dry_run"]:
            self.stdout.write(f"Would delete {count} audit trail entries older than {when}.")
        else:
            self.stdout.write(f"Deleted {count} audit trail entries older than {when}.")
