"""What rules did, in the store on SQLite and PostgreSQL: kept per action, updated on a rerun."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from smsbridge.store import SqlStore
from smsbridge.store.rule_runs import RuleRun


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated, started store on SQLite and on PostgreSQL."""
    s = SqlStore(database_url)
    s.migrate()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def test_runs_come_back_in_order_with_captures_and_details(store: SqlStore) -> None:
    runs = [
        RuleRun("msg_1", "alarm", "match", "matched", captures={"verb": "ARM", "who": None}),
        RuleRun("msg_1", "alarm", "reply", "ok", "+15145550111", outbound_message_id="msg_r"),
        RuleRun("msg_1", "alarm", "forward", "refused", "+15145550199",
                detail="to: +15145550199 has opted out"),
        RuleRun("msg_1", "late", "match", "sender_not_allowed", detail="not in 'family'"),
        RuleRun("msg_2", "alarm", "match", "matched", captures={}),
    ]
    await store.record_rule_runs(runs)
    assert await store.list_rule_runs("msg_1") == runs[:4]
    assert await store.list_rule_runs("msg_2") == runs[4:]
    assert await store.list_rule_runs("msg_unknown") == []


async def test_a_rerun_replaces_each_actions_outcome_and_adds_none(store: SqlStore) -> None:
    first = [RuleRun("msg_1", "alarm", "match", "matched", captures={"verb": "ARM"}),
             RuleRun("msg_1", "alarm", "reply", "failed", "+15145550111", detail="boom")]
    await store.record_rule_runs(first)
    again = [RuleRun("msg_1", "alarm", "match", "matched", captures={"verb": "ARM"}),
             RuleRun("msg_1", "alarm", "reply", "ok", "+15145550111",
                     outbound_message_id="msg_r")]
    # A carrier retrying its webhook runs the rules twice at once.
    await asyncio.gather(store.record_rule_runs(again), store.record_rule_runs(again))
    assert await store.list_rule_runs("msg_1") == again


async def test_text_with_nul_and_emoji_is_kept(store: SqlStore) -> None:
    run = RuleRun("msg_1", "echo", "match", "matched", captures={"what": "caf\x00é 🚨"})
    await store.record_rule_runs([run])
    assert await store.list_rule_runs("msg_1") == [run]
