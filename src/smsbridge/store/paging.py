"""Newest-first pages with opaque cursors, for every list the store gives out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Select

T = TypeVar("T")


def encode_cursor(seq: int) -> str:
    """The cursor that continues after the row with this ``seq``."""
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ``seq`` a cursor continues after; ValueError for one this store did not give out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        seq = int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("cursor is not one this server gave out") from exc
    if not 0 < seq < 2**63:
        raise ValueError("cursor is not one this server gave out")
    return seq


def newest_first(query: Select[Any], seq: Column[Any], limit: int, cursor: str | None,
                 row_to: Callable[[Any], T]) -> Callable[[Connection], tuple[list[T], str | None]]:
    """A read of ``query``'s page: ``limit`` rows newest first by ``seq``, after ``cursor``,
    each made by ``row_to``, and the cursor of the next page (None on the last)."""
    query = query.order_by(seq.desc()).limit(limit + 1)
    if cursor:
        query = query.where(seq < decode_cursor(cursor))

    def run(conn: Connection) -> tuple[list[T], str | None]:
        rows = conn.execute(query).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]._mapping[seq.name]) if more and rows else None
        return [row_to(row) for row in rows], next_cursor

    return run
