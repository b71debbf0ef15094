"""`manage.py serve_lan`: a board for the people in this room, served safely on the LAN.

Production settings over plain HTTP (sliders.lan): DEBUG off, a secret key made once and kept
in `var/`, only the machine's own names and addresses as hosts. Migrates the database, prints
the URLs (and a QR code) that phones can open, then replaces itself with uvicorn serving the
ASGI app as in production, so Ctrl+C and signals reach the server directly.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
from typing import Any

import segno
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from sliders import lan, selectors


class Command(BaseCommand):
    help = (
        "Serve Slider Sync to the people in this room: DEBUG off, a secret key kept in var/, "
        "the machine's own names and addresses allowed; prints the URL and a QR code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000).")
        parser.add_argument(
            "--host",
            default="0.0.0.0",
            help="Address to listen on (default 0.0.0.0: every IPv4 address of the machine).",
        )
        parser.add_argument(
            "--board",
            help="Slug of the board the printed URL and QR code open (default: the index).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        port: int = options["port"]
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1 to 65535, not {port}.")
        self._check_free(host, port)
        try:
            key = lan.secret_key(settings.VAR_DIR)
            lan.keep_private(settings.VAR_DIR)
        except (OSError, ValueError) as error:
            raise CommandError(f"The secret key and the database in var/: {error}") from error

        addresses = lan.machine_addresses() if host == "0.0.0.0" else [host]
        names = lan.machine_names()
        hosts = lan.allowed_hosts(addresses, names, list(settings.ALLOWED_HOSTS))

        call_command("migrate", interactive=False, verbosity=0)
        board = options["board"]
        if board is not None and selectors.get_board(board) is None:
            raise CommandError(f"There is no board {board!r}: the URL and QR code would not work.")
        connections.close_all()

        self._announce(addresses, names, port, board)
        environment = {**os.environ, **lan.environment(key=key, hosts=hosts)}
        environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        command = [
            sys.executable, "-m", "uvicorn", "sliderproject.asgi:application",
            "--host", host, "--port", str(port),
            # People connect directly: no proxy whose forwarded headers could be trusted.
            "--no-proxy-headers",
            # Slider messages are tens of bytes (docs/performance.md).
            "--ws-per-message-deflate", "false",
            # A line per request would scroll the QR code away.
            "--no-access-log",
            "--timeout-graceful-shutdown", "5",
        ]  # fmt: skip
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, environment)

    def _check_free(self, host: str, port: int) -> None:
        # Said before the QR code is printed, rather than by uvicorn after it.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                reason = {
                    errno.EADDRINUSE: f"port {port} is in use; choose another with --port",
                    errno.EACCES: f"port {port} needs privileges; choose one above 1023",
                    errno.EADDRNOTAVAIL: f"{host} is not an address of this machine",
                }.get(error.errno or 0, str(error))
                raise CommandError(f"Cannot serve on {host}:{port}: {reason}.") from None

    def _announce(
        self, addresses: list[str], names: list[str], port: int, board: str | None
    ) -> None:
        path = f"/b/{board}/" if board else "/"
        write = self.stdout.write
        write(self.style.SUCCESS("Slider Sync for the people in this room"))
        if not addresses:
            self.stderr.write(
                "This machine has no network address others can reach (is it on the network?). "
                f"Serving http://127.0.0.1:{port}{path} on this machine only."
            )
            return
        urls = [f"http://{address}:{port}{path}" for address in addresses]
        write("Open on a phone or a laptop on this network:")
        for url in urls:
            write(f"    {url}")
        local_names = [name for name in names if name.endswith(".local")]
        for name in local_names:
            write(f"    http://{name}:{port}{path}   (where the network resolves .local names)")
        write("")
        if len(urls) > 1:
            write(f"The QR code opens {urls[0]}:")
        # A QR code, not a Micro QR code, which phone cameras do not read. Half blocks, drawn
        # for a terminal with light text on a dark background, as most are.
        drawing = io.StringIO()
        segno.make_qr(urls[0], error="m").terminal(out=drawing, compact=True)
        write(drawing.getvalue().rstrip("\n"))
        write(
            f"Sign in to the admin on this machine: http://127.0.0.1:{port}/admin/ "
            "(plain HTTP: a password typed on another device crosses the network unencrypted).\n"
            f"DEBUG is off; the secret key is kept in {settings.VAR_DIR / lan.SECRET_KEY_FILE}. "
            "Stop with Ctrl+C."
        )
