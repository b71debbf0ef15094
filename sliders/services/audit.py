"""The audit trail: who changed which value, from, to, when and where.

`record` adds a change to the trail, merging one client's drag into one entry, under the name
`who` gives its actor; the trail is also how `changed_by_others` tells whether a set based on an
older version would revert someone else's change (invariant 9). `prune` deletes old entries
(`manage.py prune_audit`).
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from sliders.models import AuditEntry, ShareLink, Slider
from sliders.services import statements

if TYPE_CHECKING:
    from sliders.services.access import Actor
    from sliders.services.values import SliderChange


@dataclass(frozen=True)
class _AuditTail:
    """The newest audit entry of a slider written by this process: the one a set may extend."""

    pk: int
    client: str
    to_version: int
    ended_at: Any


# (board, slider) -> its newest entry from this process. Saves a query per set; the UPDATE below
# re-checks in the database, so a stale or rolled-back tail only means a new entry.
_audit_tails: dict[tuple[str, str], _AuditTail] = {}


def record(change: SliderChange, actor: Actor, *, old_value: float, old_version: int) -> None:
    """Add the change to the audit trail, merging it into the same client's ongoing drag.

    A page names its client itself (sliders.realtime), so a merge also needs the same user and
    address: a forged client id never adds someone's change to another person's entry. Must
    run in the transaction that writes the change.
    """
    now = timezone.now()
    key = (change.board, change.id)
    tail = _audit_tails.get(key)
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    if (
        tail is not None
        and actor.client
        and tail.client == actor.client
        and tail.to_version == old_version  # nobody else moved it in between
        and (now - tail.ended_at).total_seconds() <= settings.AUDIT_MERGE_SECONDS
    ):
        merged = statements.extend_audit_entry(
            tail.pk,
            client=actor.client,
            user_pk=user.pk if user is not None else None,
            address=actor.address[:64],
            old_version=old_version,
            value=change.value,
            version=change.version,
            at=now,
        )
        if merged:
            _audit_tails[key] = _AuditTail(tail.pk, actor.client, change.version, now)
            return
    entry = AuditEntry.objects.create(
        board=change.board,
        slider=change.id,
        user=user,
        username=who(actor, user)[:150],
        source=actor.source,
        address=actor.address[:64],
        client=actor.client[:64],
        from_value=old_value,
        to_value=change.value,
        from_version=old_version,
        to_version=change.version,
        started_at=now,
        ended_at=now,
    )
    _audit_tails[key] = _AuditTail(entry.pk, entry.client, change.version, now)


def who(actor: Actor, user: Any = None) -> str:
    """Who made a change, as the trail names them (`AuditEntry.username`).

    The signed-in `user`'s name; else the share link the change came through ("share link:
    lobby screen", or "share link #3" without a label); else, for the command line (and code
    that runs the services without an actor), the operator's login and machine ("command line
    (ops@stage-pc)"); else "" (an anonymous visitor). One rule for sets, presets and fades,
    whatever sent them: each change carries its `Actor`.
    """
    if user is not None:
        return str(user.get_username())
    if actor.share_link is not None:
        label = ShareLink.objects.filter(pk=actor.share_link).values_list("label", flat=True)
        text = label.first()
        return f"share link: {text}" if text else f"share link #{actor.share_link}"
    if actor.source == AuditEntry.Source.COMMAND:
        return f"command line ({_operator()})"
    return ""


@functools.cache
def _operator() -> str:
    """This process's login and machine, "ops@stage-pc" (what a shell's prompt says)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name: no user database entry and no $USER
        login = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{login}@{socket.gethostname()}"


def changed_by_others(slider: Slider, *, since: int, client: str) -> bool:
    """Whether anyone but `client` changed `slider` after version `since` (under its lock).

    Read from the audit trail, which records every value change with its versions and client
    (one client's consecutive changes merged into one entry). When in doubt, say yes: a base
    newer than the stored version, no client to compare, or versions after `since` that the
    trail does not account for (entries missing, or left by an earlier slider of that id).
    Only sets based on an older version pay for this one aggregate query.
    """
    if since > slider.version or not client:
        return True
    trail = AuditEntry.objects.filter(
        board=slider.board.slug, slider=slider.slug, to_version__gt=since
    ).aggregate(
        others=Count("pk", filter=~Q(client=client)),
        lowest=Min("from_version"),
        highest=Max("to_version"),
        span=Sum(F("to_version") - F("from_version")),
    )
    if trail["others"] or trail["lowest"] is None:
        return True
    # The entries must chain from `since` (or before it) to the stored version without a gap.
    covered = trail["span"] - max(0, since - trail["lowest"])
    return not (
        trail["lowest"] <= since
        and trail["highest"] == slider.version
        and covered == slider.version - since
    )


def prune(*, before: datetime, dry_run: bool = False, batch_size: int = 1000) -> int:
    """Delete the trail's entries that ended before `before`; return how many (or would be).

    In transactions of `batch_size` entries, oldest first, so that on SQLite, where a delete
    holds the one write lock, sets keep being stored in between instead of waiting for the
    whole prune. Safe while the server runs: a set based on a version whose entries are gone
    is treated as a conflict (`changed_by_others` says yes when in doubt), and a drag's entry
    that is gone is started anew.
    """
    old = AuditEntry.objects.filter(ended_at__lt=before)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not batch:
                return deleted
            deleted += AuditEntry.objects.filter(pk__in=batch).delete()[0]
