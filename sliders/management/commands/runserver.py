"""`runserver` that serves the whole ASGI app (pages, admin, static files and the socket).

It subclasses Django's own command and replaces only `inner_run`, the part that starts the
server, so Django's checks, migrations warning, banner, address argument and auto-reloader all
keep working. Uvicorn serves `settings.ASGI_APPLICATION` in its place. On an address other
machines can reach it warns loudly: this is the development server, and `serve_lan` is the safe
way onto the network.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.commands.runserver import Command as DjangoRunserverCommand
from django.db import connections
from django.utils import autoreload
from django.utils.module_loading import import_string


class Command(DjangoRunserverCommand):
    help = "Starts the development server: Django and the Slider Sync socket as one ASGI app."

    # Set by Django's `handle` from the address argument, before `inner_run`.
    addr: str
    port: str

    def inner_run(self, *args: Any, **options: Any) -> None:
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            # django-stubs type the keys as `str | None`; Django's are str ("tags").
            check_kwargs: dict[str, Any] = super().get_check_kwargs(options)  # type: ignore[assignment]
            check_kwargs["display_num_errors"] = True
            self.check(**check_kwargs)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()

        if not is_loopback(self.addr) and (warning := self.network_warning()):
            self.stderr.write(warning)

        application = import_string(settings.ASGI_APPLICATION)
        config = uvicorn.Config(
            application,
            host=self.addr,
            port=int(self.port),
            lifespan="on",
            log_level="info",
            # Slider messages are tens of bytes: compressing them costs CPU and saves nothing
            # (docs/performance.md).
            ws_per_message_deflate=False,
            # The auto-reloader lives in Django's parent process; uvicorn must not add its own.
            reload=False,
        )
        server = uvicorn.Server(config)
        self.on_bind(int(self.port))  # as Django's own server calls it: the port as a number
        try:
            server.run()
        except OSError as error:
            messages: dict[int | None, str] = {
                errno.EACCES: "You don't have permission to access that port.",
                errno.EADDRINUSE: "That port is already in use.",
                errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
            }
            self.stderr.write(f"Error: {messages.get(error.errno, error)}")
            os._exit(1)  # sys.exit does not work from the reloader's thread
        except SystemExit:
            # uvicorn logs why it could not start (port in use, ...) and calls sys.exit.
            self.stderr.write("Error: the server could not start (see the message above).")
            os._exit(1)

    def network_warning(self) -> str:
        """What `runserver` says on an address other machines can reach (empty when safe)."""
        risks = []
        if settings.DEBUG:
            risks.append("DEBUG is on: error pages show code, settings and data to anyone")
        if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
            risks.append(
                "the secret key is the published development key: anyone can forge sign-ins"
            )
        if not risks:
            return ""
        lines = [
            "",
            "!" * 78,
            f"WARNING: the development server is listening on {self.addr}, where other machines",
            "can reach it, and it is not safe for that:",
            *(f"  - {risk}." for risk in risks),
            "For the people in this room use instead:  scripts/serve-lan",
            "  (or: python manage.py serve_lan): DEBUG off, its own secret key, this machine's",
            "  names only. On a server, see docs/deploy.md.",
            "!" * 78,
            "",
        ]
        return self.style.ERROR("\n".join(lines))


def is_loopback(address: str) -> bool:
    """Whether `address` (runserver's, brackets removed) is reachable from this machine only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # "0" (0.0.0.0), a host name: assume the network can reach it
