"""The socket side as one ASGI app: Socket.IO on /socket.io/, Django for everything else.

Importing this module builds the Socket.IO server and registers its event handlers; only
sliderproject/asgi.py imports it, after Django is set up.
"""

from __future__ import annotations

from typing import Any

import socketio

from sliders.realtime import handlers  # noqa: F401 (registers the event handlers on `sio`)
from sliders.realtime.lifecycle import on_shutdown, on_startup
from sliders.realtime.server import EngineIOFrameGuard, sio


def asgi_application(django_application: Any) -> EngineIOFrameGuard:
    """The whole app around `django_application` (Django's ASGI handler)."""
    # Django's ASGI handler refuses `lifespan`; with on_startup/on_shutdown python-socketio
    # answers it.
    return EngineIOFrameGuard(
        socketio.ASGIApp(
            sio,
            other_asgi_app=django_application,
            on_startup=on_startup,
            on_shutdown=on_shutdown,
        )
    )
