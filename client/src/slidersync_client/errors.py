"""The errors of the Slider Sync client: one class per error code of the wire protocol.

Every error is a `SliderSyncError` carrying the protocol's `code` (docs/protocol.md: `conflict`,
`rate_limited`, `forbidden`, `invalid_value`, ...), the server's `message` (for people; match
on the class or on `code`, never on the text) and `details` (the rest of the server's answer,
e.g. a conflict's current `value` and `version`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SliderSyncError(Exception):
    """Something the server refused, or the connection could not do. `code` says which."""

    code: str = "error"  # each subclass sets its own

    def __init__(
        self, message: str, details: Mapping[str, Any] | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequestError(SliderSyncError):
    """The server could not read what was sent (a bug in the caller or in this client)."""

    code = "bad_request"


class UnauthorizedError(SliderSyncError):
    """The API token is wrong or revoked (or its user deactivated): the connection is refused."""

    code = "unauthorized"


class ForbiddenError(SliderSyncError):
    """This user may not view the board (on connect) or may not move its sliders (on set)."""

    code = "forbidden"


class UnknownBoardError(SliderSyncError):
    """No board has that slug."""

    code = "unknown_board"


class UnknownSliderError(SliderSyncError):
    """The board has no slider with that id."""

    code = "unknown_slider"


class InvalidValueError(SliderSyncError):
    """The value is not a finite number (refused before it is sent, or by the server)."""

    code = "invalid_value"


class ConflictError(SliderSyncError):
    """A set based on an older version (`base_version`): someone else changed the slider since.

    `value` and `version` are what the slider holds now.
    """

    code = "conflict"

    @property
    def value(self) -> float | None:
        value = self.details.get("value")
        return float(value) if isinstance(value, int | float) else None

    @property
    def version(self) -> int | None:
        version = self.details.get("version")
        return version if isinstance(version, int) else None


class RateLimitedError(SliderSyncError):
    """Too many sets from this connection; send the latest value again a little later."""

    code = "rate_limited"


class UnavailableError(SliderSyncError):
    """The server could not reach its database in time; nothing was stored."""

    code = "unavailable"


class TooManyConnectionsError(SliderSyncError):
    """This address holds too many connections to the server."""

    code = "too_many_connections"


class ConnectionFailedError(SliderSyncError):
    """The server could not be reached, did not send the board in time, or the URL is not
    http:// or https://. Not a protocol code."""

    code = "connection_failed"


class NoAnswerError(SliderSyncError):
    """A set got no answer in time (the connection dropped or the server is stuck): whether it
    was stored is unknown; the board's values say once it is back. Not a protocol code."""

    code = "no_answer"


class ClosedError(SliderSyncError):
    """The board was closed (by `close()`, or by a refusal while reconnecting)."""

    code = "closed"


_BY_CODE: dict[str, type[SliderSyncError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        ForbiddenError,
        UnknownBoardError,
        UnknownSliderError,
        InvalidValueError,
        ConflictError,
        RateLimitedError,
        UnavailableError,
        TooManyConnectionsError,
    )
}


def error_for(
    code: object, message: object, details: Mapping[str, Any] | None = None
) -> SliderSyncError:
    """The exception for an error answer: the class of `code` (a `SliderSyncError` for a code
    this client does not know, with that code), the server's message, the answer as details."""
    text = message if isinstance(message, str) and message else f"The server refused: {code}."
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is not None:
        return cls(text, details)
    return SliderSyncError(text, details, code=code if isinstance(code, str) else None)
