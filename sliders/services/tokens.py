"""API tokens: issuing one, and finding the user a token belongs to (HTTP API and sockets).

A token is `sst_` and 32 random bytes (URL-safe base64); only its SHA-256 digest is stored
(`ApiToken.digest_of`), so the secret is shown once, when it is issued in the admin.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.utils import timezone

from sliders.models import ApiToken

# How stale `last_used_at` may get before a use writes it again (seconds): most uses write nothing.
LAST_USED_RESOLUTION = 60
# What `issue_api_token` makes: `sst_` and 43 URL-safe base64 characters (room left for change).
TOKEN_SHAPE = re.compile(r"sst_[A-Za-z0-9_-]{20,200}")


def issue_api_token(*, user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`: the saved row, and the secret to hand over (once)."""
    token = f"sst_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(
        user=user, name=name, prefix=token[:12], digest=ApiToken.digest_of(token)
    )
    return row, token


def looks_like_api_token(text: str) -> bool:
    """Whether `text` has the shape of a token we issue (no lookup; any other text is wrong)."""
    return TOKEN_SHAPE.fullmatch(text) is not None


def find_api_token(token: str) -> ApiToken | None:
    """The valid, unrevoked token row for `token` (its active user loaded), else None.

    Only reads, so a connecting socket can run it in the read thread.
    """
    return (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.digest_of(token), revoked=False, user__is_active=True)
        .first()
    )


def token_use_is_due(row: ApiToken) -> bool:
    """Whether a use of `row` now is to be written (its last one is older than a minute)."""
    last = row.last_used_at
    return last is None or (timezone.now() - last).total_seconds() > LAST_USED_RESOLUTION


def record_api_token_use(row: ApiToken) -> None:
    """Record that the token `row` was used now (a write at most once a minute per token)."""
    if token_use_is_due(row):
        now = timezone.now()
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now


def user_for_api_token(token: str) -> Any | None:
    """The active user a valid, unrevoked token belongs to, else None.

    Records when the token was used (at most once a minute per token).
    """
    row = find_api_token(token)
    if row is None:
        return None
    record_api_token_use(row)
    return row.user


def api_client_of(token: str) -> str:
    """The client id of a token's requests (rate limit, audit trail): `token:` and 16 hex digits."""
    return f"token:{ApiToken.digest_of(token)[:16]}"
