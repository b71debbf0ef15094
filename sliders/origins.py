"""Which browser origins may open a socket: protection against cross-site WebSocket hijacking.

A page on another site could otherwise open a socket to us with the visitor's cookies. We accept
the origin the request was addressed to (when that host is in ALLOWED_HOSTS) and any origin in
CSRF_TRUSTED_ORIGINS, the same rule Django's CSRF check applies to forms.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host


def is_allowed_origin(origin: str | None, environ: dict[str, Any]) -> bool:
    if origin is None:
        return True  # not a browser: scripts and servers send no Origin, and carry no cookies
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = environ.get("HTTP_HOST", "")
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    return origin == f"{_request_scheme(environ)}://{host}"


def _request_scheme(environ: dict[str, Any]) -> str:
    scope = environ.get("asgi.scope", {})
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        header, secure_value = proxy_header
        if environ.get(header, "").split(",")[0].strip() == secure_value:
            scheme = "https"
    return scheme
