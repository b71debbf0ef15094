from __future__ import annotations

from django.apps import AppConfig


class SlidersConfig(AppConfig):
    name = "sliders"
    verbose_name = "Slider Sync"

    def ready(self) -> None:
        from sliders import (
            checks,  # noqa: F401  (registers the system checks)
            keys,  # noqa: F401  (versions under a slider key never go back)
        )
