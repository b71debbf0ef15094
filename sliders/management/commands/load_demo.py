"""Create the demo board `main` with two sliders, unless it exists (safe to run on every start)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from sliders import services
from sliders.models import Board, Slider


class Command(BaseCommand):
    help = "Create the demo board 'main' with 'Slider 1' and 'Slider 2' (0-100) if it is missing."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            board, created = Board.objects.get_or_create(slug="main", defaults={"name": "Main"})
            if not created:
                self.stdout.write("Demo board 'main' already exists; left as it is.")
                return
            for position, (slug, name) in enumerate([("s1", "Slider 1"), ("s2", "Slider 2")]):
                slider = Slider(board=board, slug=slug, name=name, position=position)
                services.save_slider(slider=slider, requested_value=50)
        self.stdout.write(self.style.SUCCESS("Created demo board 'main' with two sliders."))
