"""What each inbound rule did, mixed into SqlStore (filled in by issue 8)."""

from __future__ import annotations


class RuleRunQueries:
    """SqlStore's rule-outcome methods."""
