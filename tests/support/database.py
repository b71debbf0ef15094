"""What the database holds now: a slider's row, its (value, version), its audit trail.

Tests compare these with what clients were told. The test process reads its own database (the
one the live servers share) through the ORM; multi-process tests whose servers use a fresh
PostgreSQL database (tests/support/services.py) pass that database's URL instead.
"""

from __future__ import annotations

from typing import Any

import psycopg


def slider_row(board: Any, slider: str = "s1") -> Any:
    """A `Slider` row as the database has it now.

    `board` is a Board or its slug, and `slider` the slider's slug; or `board` is a Slider,
    read again by its primary key (wherever it has moved since; `slider` is then ignored).
    """
    from sliders.models import Slider

    if isinstance(board, Slider):
        return Slider.objects.get(pk=board.pk)
    if isinstance(board, str):
        return Slider.objects.get(board__slug=board, slug=slider)
    return Slider.objects.get(board=board, slug=slider)


def stored(
    board: Any = "main", slider: str = "s1", *, database_url: str | None = None
) -> tuple[float, int]:
    """The slider's (value, version) as the database has it now.

    `board` and `slider` are as for `slider_row`. With `database_url` the row is read from that
    database (over psycopg) rather than the test process's own; `board` is then a slug.
    """
    if database_url is None:
        row = slider_row(board, slider)
        return row.value, row.version
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT s.value, s.version FROM sliders_slider s JOIN sliders_board b"
            " ON s.board_id = b.id WHERE b.slug = %s AND s.slug = %s",
            [board, slider],
        ).fetchone()
    assert found is not None
    return float(found[0]), int(found[1])


def stored_board(board: Any) -> dict[str, tuple[float, int]]:
    """Every slider of `board` (a Board): slug -> (value, version), as the database has it now."""
    from sliders.models import Slider

    rows = Slider.objects.filter(board=board).values_list("slug", "value", "version")
    return {slug: (value, version) for slug, value, version in rows}


def trail(board_slug: str, slider_slug: str) -> list[tuple[str, float, int, int]]:
    """The slider's audit trail, oldest first: (client, to_value, from_version, to_version)."""
    from sliders.models import AuditEntry

    entries = AuditEntry.objects.filter(board=board_slug, slider=slider_slug).order_by("id")
    return list(entries.values_list("client", "to_value", "from_version", "to_version"))
