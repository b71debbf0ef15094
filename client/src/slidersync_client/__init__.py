"""slidersync_client: read, set and watch the sliders of a Slider Sync board from Python.

`Board` is the asyncio client; `slidersync_client.sync.Board` the blocking one. See the README
and the project's docs/client.md.
"""

from __future__ import annotations

from slidersync_client.board import Board, ChangeStream
from slidersync_client.errors import (
    BadRequestError,
    ClosedError,
    ConflictError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidValueError,
    NoAnswerError,
    RateLimitedError,
    SliderSyncError,
    TooManyConnectionsError,
    UnauthorizedError,
    UnavailableError,
    UnknownBoardError,
    UnknownSliderError,
)
from slidersync_client.state import Change, Slider

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "Board",
    "Change",
    "ChangeStream",
    "ClosedError",
    "ConflictError",
    "ConnectionFailedError",
    "ForbiddenError",
    "InvalidValueError",
    "NoAnswerError",
    "RateLimitedError",
    "Slider",
    "SliderSyncError",
    "TooManyConnectionsError",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownBoardError",
    "UnknownSliderError",
]
