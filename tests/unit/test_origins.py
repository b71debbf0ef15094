"""Which browser origins may open a socket (sliders/origins.py), against Django's settings."""

from __future__ import annotations

from typing import Any

import pytest

from sliders.origins import is_allowed_origin


@pytest.fixture(autouse=True)
def hosts(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["board.example", ".venue.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example"]
    settings.SECURE_PROXY_SSL_HEADER = None


def environ(host: str = "board.example", scheme: str = "http", **headers: str) -> dict[str, Any]:
    return {"HTTP_HOST": host, "asgi.scope": {"scheme": scheme}, **headers}


def test_no_origin_is_not_a_browser_and_is_allowed() -> None:
    assert is_allowed_origin(None, environ()) is True


def test_the_origin_the_request_was_addressed_to_is_allowed() -> None:
    assert is_allowed_origin("http://board.example", environ()) is True
    assert is_allowed_origin("http://stage.venue.example:8000", environ("stage.venue.example:8000"))


def test_another_sites_origin_is_refused() -> None:
    assert is_allowed_origin("http://evil.example", environ()) is False
    assert is_allowed_origin("http://board.example:8000", environ()) is False  # another port


def test_a_host_outside_allowed_hosts_is_refused_even_for_its_own_origin() -> None:
    assert is_allowed_origin("http://evil.example", environ("evil.example")) is False
    assert is_allowed_origin("http://", environ("")) is False


def test_csrf_trusted_origins_are_allowed_from_any_host() -> None:
    assert is_allowed_origin("https://console.example", environ()) is True


def test_the_scheme_must_match_the_request() -> None:
    assert is_allowed_origin("https://board.example", environ()) is False
    assert is_allowed_origin("https://board.example", environ(scheme="https")) is True
    assert is_allowed_origin("https://board.example", environ(scheme="wss")) is True
    assert is_allowed_origin("http://board.example", environ(scheme="https")) is False


def test_behind_tls_termination_the_trusted_proxy_header_gives_the_scheme(settings: Any) -> None:
    behind_proxy = environ(HTTP_X_FORWARDED_PROTO="https, http")
    assert is_allowed_origin("https://board.example", behind_proxy) is False  # not trusted yet
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert is_allowed_origin("https://board.example", behind_proxy) is True
    assert is_allowed_origin("http://board.example", behind_proxy) is False
    assert is_allowed_origin("http://board.example", environ()) is True  # no header: plain http
