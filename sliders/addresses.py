"""Where a request or a socket comes from: the client's IP address, read one way per transport.

"ip" is the address alone (rate limits per address, the audit trail, the metrics allow-list);
"peer" is ip:port (log lines, one connection among several from one address). Behind a proxy,
run uvicorn with --proxy-headers so the ASGI scope holds the client's address, not the proxy's.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def request_ip(request: HttpRequest) -> str:
    """The client's IP of an HTTP request; "" if the server gave none.

    Django's ASGI handler sets REMOTE_ADDR from the scope's `client` (as WSGI servers do), so
    this is the scope's address under ASGI too.
    """
    ip: str = request.META.get("REMOTE_ADDR", "")
    return ip


def socket_ip_and_peer(environ: dict[str, Any]) -> tuple[str, str]:
    """(ip, "ip:port") of a Socket.IO connection, from python-socketio's `environ`.

    Under ASGI python-socketio's REMOTE_ADDR is always 127.0.0.1; the real peer is in the ASGI
    scope. ("unknown", "unknown") when the scope names none.
    """
    client = environ.get("asgi.scope", {}).get("client")
    if not client:
        return "unknown", "unknown"
    return str(client[0]), f"{client[0]}:{client[1]}"
