"""What each inbound rule did with a message, mixed into SqlStore."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .schema import rule_runs

# A carrier retries a webhook whose handling failed, and the rules run again: each action of
# a rule on a message is one row, brought up to date by the later run.
_KEY = [rule_runs.c.message_id, rule_runs.c.rule, rule_runs.c.action, rule_runs.c.target]
_UPDATED = ("status", "detail", "captures", "outbound_message_id", "updated_at")

T = TypeVar("T")


def _upsert(dialect_insert: Callable[..., Any]) -> Any:
    stmt = dialect_insert(rule_runs)
    return stmt.on_conflict_do_update(index_elements=_KEY,
                                      set_={c: stmt.excluded[c] for c in _UPDATED})


UPSERT_RULE_RUN = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}
BY_MESSAGE = select(rule_runs).order_by(rule_runs.c.seq)


@dataclass(frozen=True, slots=True)
class RuleRun:
    """One outcome of a rule on an inbound message.

    ``action`` is "match" (``status`` "matched", with the captures, or
    "sender_not_allowed") or a send: "reply" or "forward" to ``target``, whose ``status``
    is "ok" (queued as ``outbound_message_id``), "refused" or "failed", with why in ``detail``.
    """

    message_id: str
    rule: str
    action: str
    status: str
    target: str = ""
    detail: str | None = None
    captures: dict[str, str | None] | None = None
    outbound_message_id: str | None = None


def _values(run: RuleRun, now: float) -> dict[str, Any]:
    return {
        "message_id": run.message_id, "rule": run.rule, "action": run.action,
        "target": run.target, "status": run.status, "detail": run.detail,
        "captures": None if run.captures is None else json.dumps(run.captures,
                                                                 ensure_ascii=False),
        "outbound_message_id": run.outbound_message_id, "created_at": now, "updated_at": now,
    }


def _run(row: Any) -> RuleRun:
    m = row._mapping
    captures = None if m["captures"] is None else json.loads(m["captures"])
    return RuleRun(m["message_id"], m["rule"], m["action"], m["status"], m["target"],
                   m["detail"], captures, m["outbound_message_id"])


class RuleRunQueries:
    """SqlStore's rule-outcome methods."""

    if TYPE_CHECKING:  # provided by SqlStore
        clock: Callable[[], float]

        async def _write(self, op: Callable[[Connection], T]) -> T: ...

        async def _read(self, op: Callable[[Connection], T]) -> T: ...

    async def record_rule_runs(self, runs: Sequence[RuleRun]) -> None:
        """Store what the rules did; a run already stored for the same action is replaced."""
        if not runs:
            return
        now = self.clock()

        def op(conn: Connection) -> None:
            conn.execute(UPSERT_RULE_RUN[conn.dialect.name], [_values(r, now) for r in runs])

        await self._write(op)

    async def list_rule_runs(self, message_id: str) -> list[RuleRun]:
        """What the rules did with one message, in the order they did it."""
        query = BY_MESSAGE.where(rule_runs.c.message_id == message_id)
        return await self._read(
            lambda c: [_run(r) for r in c.execute(query)])
