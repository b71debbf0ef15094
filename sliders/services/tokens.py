"""API tokens: issuing one, and finding the user a token belongs to.

A token is `sst_` and 32 random bytes (URL-safe base64); only its SHA-256 digest is stored
(`ApiToken.digest_of`), so the secret is shown once, when it is issued in the admin.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.utils import timezone

from sliders.models import ApiToken

# How stale `last_used_at` may get before a use writes it again (seconds): most uses write nothing.
LAST_USED_RESOLUTION = 60


def issue_api_token(*, user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`: the saved row, and the secret to hand over (once)."""
    token = f"sst_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(
        user=user, name=name, prefix=token[:12], digest=ApiToken.digest_of(token)
    )
    return row, token


def user_for_api_token(token: str) -> Any | None:
    """The active user a valid, unrevoked token belongs to, else None.

    Records when the token was used (at most once a minute per token).
    """
    row = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.digest_of(token), revoked=False, user__is_active=True)
        .first()
    )
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


def api_client_of(token: str) -> str:
    """The client id of a token's requests (rate limit, audit trail): `token:` and 16 hex digits."""
    return f"token:{ApiToken.digest_of(token)[:16]}"
