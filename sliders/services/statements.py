"""The statements every set runs, written in SQL once instead of built by the ORM on each call.

A `slider:set` runs the same three statements every time: read and lock the slider with its
board, write the new value and version, extend the audit entry of the drag. Django's ORM builds
and compiles each query anew on every call, and that was most of a set's cost: about 1.0 ms of
CPU of a set's 1.06 ms, against about 0.05 ms for running the SQL itself (measured on SQLite,
see docs/performance.md, "What each change bought"). Django has no prepared or cached queries,
so these three are written here, from the models' own table and column names, in SQL that
SQLite and PostgreSQL both take. Reads go through `Model.objects.raw()`, so every value is
converted as the ORM converts it. Everything else, including the admin's writes, uses the ORM.
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import connection

from sliders.models import AuditEntry, Board, Slider


@functools.cache
def _sql(vendor: str) -> dict[str, str]:
    """The statements for a database vendor ("sqlite", "postgresql"), built on first use."""
    q = connection.ops.quote_name
    slider, board, audit = (q(m._meta.db_table) for m in (Slider, Board, AuditEntry))

    def columns(model: type[Slider] | type[Board], alias: str) -> str:
        return ", ".join(
            f"{alias}.{q(field.column or '')}" for field in model._meta.concrete_fields
        )

    # Row locks: PostgreSQL locks the slider's row (not its board's); SQLite has none, its
    # transactions start with BEGIN IMMEDIATE (settings.py), which takes the database's.
    lock = " FOR UPDATE OF s" if connection.features.has_select_for_update_of else ""
    return {
        "slider": (
            f"SELECT {columns(Slider, 's')} FROM {slider} s INNER JOIN {board} b"
            f" ON s.{q('board_id')} = b.{q('id')}"
            f" WHERE b.{q('slug')} = %s AND s.{q('slug')} = %s{lock}"
        ),
        "board": f"SELECT {columns(Board, 'b')} FROM {board} b WHERE b.{q('id')} = %s",
        "write": (
            f"UPDATE {slider} SET {q('value')} = %s, {q('version')} = %s"
            f" WHERE {q('id')} = %s AND {q('version')} = %s"
        ),
        "extend": (
            f"UPDATE {audit} SET {q('to_value')} = %s, {q('to_version')} = %s,"
            f" {q('changes')} = {q('changes')} + 1, {q('ended_at')} = %s"
            f" WHERE {q('id')} = %s AND {q('client')} = %s AND {q('to_version')} = %s"
            f" AND {q('address')} = %s AND {q('user_id')}"
        ),
    }


def slider_for_change(board_slug: str, slider_id: str) -> Slider | None:
    """The slider `slider_id` of board `board_slug`, its row locked, with its board loaded.

    Like `Slider.objects.select_for_update(of=("self",)).select_related("board")` filtered on
    both slugs. Must run inside the transaction that writes it. None: no such slider.
    """
    sql = _sql(connection.vendor)
    found = list(Slider.objects.raw(sql["slider"], [board_slug, slider_id]))
    if not found:
        return None
    slider = found[0]
    # The slider's row is locked, so its board row exists (deleting a board deletes its sliders).
    slider.board = next(iter(Board.objects.raw(sql["board"], [slider.board_id])))
    return slider


def write_value(slider_pk: int, *, old_version: int, value: float, version: int) -> int:
    """Set a slider's value and version if it is still at `old_version`; rows written (0 or 1)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(connection.vendor)["write"], [value, version, slider_pk, old_version])
        return int(cursor.rowcount)


def extend_audit_entry(
    entry_pk: int,
    *,
    client: str,
    user_pk: int | None,
    address: str,
    old_version: int,
    value: float,
    version: int,
    at: datetime,
) -> int:
    """Extend a drag's audit entry to `value`/`version` at `at`, counting one more change.

    Only if the entry is still that client's (same user, address) and ends at `old_version`:
    the database re-checks what the caller remembered. Rows written (0 or 1).
    """
    sql = _sql(connection.vendor)["extend"]
    params: list[float | int | str | None] = [
        value, version, connection.ops.adapt_datetimefield_value(at), entry_pk, client,
        old_version, address,
    ]  # fmt: skip
    if user_pk is None:
        sql += " IS NULL"
    else:
        sql += " = %s"
        params.append(user_pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
