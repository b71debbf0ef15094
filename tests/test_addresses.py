"""The client's address, read one way per transport (sliders/addresses.py)."""

from __future__ import annotations

from django.test import RequestFactory

from sliders import addresses


def test_a_request_s_ip_is_its_remote_addr() -> None:
    assert addresses.request_ip(RequestFactory(REMOTE_ADDR="203.0.113.9").get("/")) == (
        "203.0.113.9"
    )
    request = RequestFactory().get("/")
    del request.META["REMOTE_ADDR"]
    assert addresses.request_ip(request) == ""


def test_a_socket_s_ip_and_peer_come_from_the_asgi_scope() -> None:
    environ = {"REMOTE_ADDR": "127.0.0.1", "asgi.scope": {"client": ["203.0.113.9", 4711]}}
    assert addresses.socket_ip_and_peer(environ) == ("203.0.113.9", "203.0.113.9:4711")
    assert addresses.socket_ip_and_peer({"asgi.scope": {}}) == ("unknown", "unknown")
    assert addresses.socket_ip_and_peer({}) == ("unknown", "unknown")
