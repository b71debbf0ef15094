"""The one exception every service raises to refuse a change, whatever the sub-domain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SliderError(Exception):
    """A refused change. `code` is the wire protocol's error code.

    `details` are extra fields for the refusal (a `conflict` carries the slider's stored
    `{"id", "value", "version"}`); the socket ack and the HTTP API both add them to the error.
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
