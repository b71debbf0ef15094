"""`Refusal`: the one exception a service raises to refuse a change, whatever the sub-domain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Refusal(Exception):
    """A change or request a service refuses; `code` is the wire protocol's error code.

    One type for every refusal: a bad value or request, an unknown board, slider or preset, a
    conflict, no right to edit, a rate limit, an unavailable database.

    `details` are extra fields for the refusal (a `conflict` carries the slider's stored
    `{"id", "value", "version"}`); the socket ack and the HTTP API both add them to the error.
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
