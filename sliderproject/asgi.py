"""The one ASGI app: Socket.IO on /socket.io/, Django (pages, admin, static files) for the rest.

Serve it with `uvicorn sliderproject.asgi:application`, or `python manage.py runserver`.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sliderproject.settings")
# Served directly (uvicorn, a process manager) this is production: DEBUG is off unless the
# environment or .env says otherwise. `manage.py runserver` loads the settings first, as
# development.
os.environ.setdefault("SLIDER_SYNC_DEFAULT_DEBUG", "false")

# Set up Django before importing anything that imports models.
django_application = get_asgi_application()

from sliders.realtime.app import asgi_application  # noqa: E402

application = asgi_application(django_application)
