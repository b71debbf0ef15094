"""System checks for setups that would silently lose the socket layer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

# Apps that ship their own `runserver`; ours must come first to win.
_OTHER_RUNSERVERS = ("servestatic", "django.contrib.staticfiles")


@register
def sliders_runserver_wins(app_configs: Any, **kwargs: Any) -> list[Error]:
    apps = list(settings.INSTALLED_APPS)
    shadowing = [app for app in _OTHER_RUNSERVERS if app in apps]
    if any(apps.index("sliders") > apps.index(app) for app in shadowing):
        return [
            Error(
                f"'sliders' must come before {', '.join(map(repr, shadowing))} in INSTALLED_APPS.",
                hint="Otherwise `runserver` serves Django alone, without the socket layer.",
                id="sliders.E001",
            )
        ]
    return []
