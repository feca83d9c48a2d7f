"""Opt-out keywords and the [optout] table: which texts are keywords, which settings apply."""

from __future__ import annotations

from typing import Any

import pytest

from smsbridge.core.errors import ConfigError
from smsbridge.gateway.config import OPTOUT_HELP_REPLY, settings_from_dict
from smsbridge.gateway.optouts import Keyword, OptoutHandler, keyword_of

HOME, SHOP, OFFICE = "+15555550100", "+15555550101", "+15555550102"
CONNECTIONS = [
    {"name": "home", "carrier": "sandbox", "numbers": [HOME, SHOP]},
    {"name": "office", "carrier": "sandbox", "numbers": [OFFICE]},
]


def settings(optout: dict[str, Any]) -> Any:
    return settings_from_dict({"server": {"database": "sqlite:///:memory:"},
                               "connections": CONNECTIONS, "optout": optout})


@pytest.mark.parametrize(("text", "keyword"), [
    ("STOP", Keyword.STOP), (" stopall\n", Keyword.STOP), ("Unsubscribe", Keyword.STOP),
    ("cancel", Keyword.STOP), ("END", Keyword.STOP), ("quit", Keyword.STOP),
    ("START", Keyword.START), ("unstop", Keyword.START), ("Yes", Keyword.START),
    ("HELP", Keyword.HELP), ("info ", Keyword.HELP),
    ("STOP IT", None), ("stop.", None), ("", None), ("STOP ALL", None), ("ARM SV", None),
])
def test_only_a_whole_keyword_is_one(text: str, keyword: Keyword | None) -> None:
    assert keyword_of(text) is keyword


def test_a_number_overrides_its_connection_which_overrides_the_table() -> None:
    config = settings({"help_reply": "table", "start_reply": "table start",
                       "connections": {"home": {"help_reply": "home", "enabled": False}},
                       "numbers": {"+1 (555) 555-0101": {"help_reply": "shop",
                                                         "enabled": True}}}).config.optout
    shop, home, office = (config.policy("home", SHOP), config.policy("home", HOME),
                          config.policy("office", OFFICE))
    assert (shop.enabled, shop.help_reply, shop.start_reply) == (True, "shop", "table start")
    assert (home.enabled, home.help_reply) == (False, "home")
    assert (office.enabled, office.help_reply) == (True, "table")


def test_defaults_are_on_with_a_help_text() -> None:
    policy = settings({}).config.optout.policy("office", OFFICE)
    assert policy.enabled and policy.help_reply == OPTOUT_HELP_REPLY
    assert policy.stop_reply and policy.start_reply


@pytest.mark.parametrize(("optout", "key", "reason"), [
    ({"numbers": {"5555550100": {}}}, "optout.numbers", "E.164"),
    ({"numbers": {"+1": {}}}, "optout.numbers", "not a"),
    ({"connections": {"home": {"stop": "x"}}}, "optout.connections.home.stop", "unknown key"),
    ({"help_reply": "x" * 1601}, "optout.help_reply", "1600"),
])
def test_a_bad_table_names_its_key(optout: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(optout)
    assert caught.value.key == key and reason in caught.value.reason


@pytest.mark.parametrize(("optout", "key"), [
    ({"connections": {"garage": {"enabled": False}}}, "optout.connections.garage"),
    ({"numbers": {"+15145550199": {"enabled": False}}}, 'optout.numbers."+15145550199"'),
])
def test_an_override_of_nothing_configured_stops_the_start(optout: dict[str, Any],
                                                           key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OptoutHandler(settings(optout))
    assert caught.value.key == key
