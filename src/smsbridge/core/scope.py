"""Who is asking: the account an operation acts within, and whether it may manage accounts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    """An API key's (or the CLI's) reach: one account's things, plus accounts when admin."""

    account_id: str
    admin: bool = False
