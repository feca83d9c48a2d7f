"""The opt-out (suppression) list's queries, mixed into SqlStore (filled in by issue 8)."""

from __future__ import annotations


class OptoutQueries:
    """SqlStore's opt-out list methods."""
