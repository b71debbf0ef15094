from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def realtime(request: HttpRequest) -> dict[str, Any]:
    """Settings the page's script needs to open its socket."""
    return {"socketio_transports": list(settings.SOCKETIO_TRANSPORTS)}
