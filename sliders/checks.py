"""System checks for setups that would silently lose the socket layer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register
def sliders_before_staticfiles(app_configs: Any, **kwargs: Any) -> list[Error]:
    apps = list(settings.INSTALLED_APPS)
    staticfiles = "django.contrib.staticfiles"
    if staticfiles in apps and apps.index("sliders") > apps.index(staticfiles):
        return [
            Error(
                "'sliders' must come before 'django.contrib.staticfiles' in INSTALLED_APPS.",
                hint="Otherwise `runserver` serves Django alone, without the socket layer.",
                id="sliders.E001",
            )
        ]
    return []
