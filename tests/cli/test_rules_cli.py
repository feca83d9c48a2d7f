"""`smsbridge rules test` and the [[rules]] config errors, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsbridge.testing.server import free_port
from tests.cli.test_cli import smsbridge

# The issue's own example, around one sandbox number and one named app webhook.
CONFIG = """\
[server]
listen = "127.0.0.1:{port}"
database = "sqlite:///{db}"

[[connections]]
name = "home"
carrier = "sandbox"
numbers = ["+15555550100"]

[[webhooks]]
name = "alarm"
url = "https://alarm.example.com/hook"
secret = "${{ALARM_WEBHOOK_SECRET}}"

[sender_groups]
family = ["+15145550111", "+15145550112"]

[[rules]]
name = "alarm"
to = ["+15555550100"]
from = "family"
pattern = '^(?P<verb>ARM|DISARM) (?P<who>[A-Z]{{2}})$'
webhooks = ["alarm"]
reply = "{{verb}} by {{who}}: done"
forward_to = ["+15145550199"]
continue = false
{extra}"""
SECRET = {"ALARM_WEBHOOK_SECRET": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}


def write(tmp_path: Path, extra: str = "", **replace: str) -> Path:
    """The config file, with ``extra`` appended and any of its lines replaced."""
    text = CONFIG.format(port=free_port(), db=tmp_path / "sms.db", extra=extra)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "smsbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def rules_test(tmp_path: Path, config: Path, *args: str) -> tuple[int, str, str]:
    result = smsbridge("rules", "test", "-c", str(config), *args, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout, result.stderr


def test_an_allowed_command_shows_the_rule_captures_reply_and_forward(tmp_path: Path) -> None:
    config = write(tmp_path)
    code, out, err = rules_test(tmp_path, config, "--from", "514 555 0111", "--to",
                                "+15555550100", "--text", " ARM SV ")
    assert code == 0, err
    assert "rule alarm fires" in out
    assert "verb='ARM', who='SV'" in out
    assert "webhooks: alarm" in out
    assert "reply to +15145550111: ARM by SV: done" in out
    assert "forward to +15145550199: From +15145550111: ARM SV" in out
    assert "default route" not in out
    # Config only: no database was opened, let alone written (nor its secrets needed).
    assert not (tmp_path / "sms.db").exists()


def test_a_stranger_is_shown_as_not_allowed_and_the_default_route(tmp_path: Path) -> None:
    code, out, err = rules_test(tmp_path, write(tmp_path), "--from", "+14385550123", "--to",
                                "+15555550100", "--text", "ARM SV")
    assert code == 0, err
    assert "rule alarm does not fire: +14385550123 is not in sender group 'family'" in out
    assert "no rule fires: the message goes to the default route" in out
    assert "reply to" not in out


def test_json_output_and_continue(tmp_path: Path) -> None:
    config = write(tmp_path, extra='\n[[rules]]\nname = "all"\nforward_to = ["+15145550199"]\n',
                   **{"continue = false": "continue = true"})
    code, out, err = rules_test(tmp_path, config, "--json", "--from", "+15145550112", "--to",
                                "+15555550100", "--text", "disarm jf")
    assert code == 0, err
    result = json.loads(out)
    assert [r["rule"] for r in result["rules"]] == ["alarm", "all"]
    alarm = result["rules"][0]
    assert alarm["captures"] == {"verb": "disarm", "who": "jf"}
    assert alarm["reply"] == {"to": "+15145550112", "text": "disarm by jf: done"}
    assert result["default_route"] is False and result["optout_keyword"] is False


def test_an_opt_out_keyword_never_reaches_the_rules(tmp_path: Path) -> None:
    config = write(tmp_path, **{"pattern = '^(?P<verb>ARM|DISARM) (?P<who>[A-Z]{2})$'":
                                'keyword = "stop"', 'reply = "{verb} by {who}: done"':
                                'reply = "ok"'})
    code, out, err = rules_test(tmp_path, config, "--from", "+15145550111", "--to",
                                "+15555550100", "--text", "Stop")
    assert code == 0, err
    assert "is an opt-out keyword" in out and "rule alarm" not in out


def test_a_number_of_no_connection_is_named(tmp_path: Path) -> None:
    code, _, err = rules_test(tmp_path, write(tmp_path), "--from", "+15145550111", "--to",
                              "+15555550999", "--text", "ARM SV")
    assert code == 2
    assert "invalid to: +15555550999 is not a number of any connection" in err


@pytest.mark.parametrize(
    ("replace", "key", "reason"),
    [
        ({'reply = "{verb} by {who}: done"': 'reply = "{verb} by {whom}: done"'},
         "rules[0].reply", "{whom} is not a field"),
        ({'reply = "{verb} by {who}: done"': 'reply = "{verb.__class__}"'},
         "rules[0].reply", "is not a plain field"),
        ({"(?P<who>[A-Z]{2})$": "(?P<who>[A-Z]{2}$"}, "rules[0].pattern",
         "not a valid regular expression"),
        ({'from = "family"': 'from = "familly"'}, "rules[0].from",
         "no sender group named 'familly'"),
        ({'webhooks = ["alarm"]': 'webhooks = ["siren"]'}, "rules[0].webhooks[0]",
         "no [[webhooks]] entry is named 'siren'"),
        ({'forward_to = ["+15145550199"]': 'forward_to = ["my cell"]'},
         "rules[0].forward_to[0]", "not a phone number"),
        ({'to = ["+15555550100"]': 'to = ["+15555550199"]'}, "rules[0].to[0]",
         "is not a number of any connection"),
        ({"continue = false": "contine = false"}, "rules[0].contine", "unknown key"),
        ({"continue = false": "mqtt = true"}, "rules[0].mqtt", "needs an [mqtt] table"),
        ({'name = "alarm"\nto = ': 'name = "send"\nto = '}, "rules[0].name",
         "'send' is taken by MQTT sends"),
    ],
)
def test_config_check_names_the_bad_rule_key(tmp_path: Path, replace: dict[str, str],
                                             key: str, reason: str) -> None:
    config = write(tmp_path, **replace)
    result = smsbridge("config", "check", "-c", str(config), cwd=tmp_path, env=SECRET)
    assert result.returncode == 2, result.stdout
    assert f"config error {key}: " in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_on_a_template_naming_an_unknown_field(tmp_path: Path) -> None:
    config = write(tmp_path, **{'reply = "{verb} by {who}: done"': 'reply = "{verb}: {user}"'})
    result = smsbridge("serve", "-c", str(config), cwd=tmp_path, env=SECRET)
    assert result.returncode == 2
    assert "config error rules[0].reply: {user} is not a field" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sms.db").exists()


@pytest.mark.parametrize(("extra", "key"), [
    ('[optout.connections.garage]\nenabled = false\n', "optout.connections.garage"),
    ('[optout.numbers."+15145550199"]\nenabled = false\n', 'optout.numbers."+15145550199"'),
])
def test_config_check_names_an_opt_out_override_of_nothing(tmp_path: Path, extra: str,
                                                           key: str) -> None:
    result = smsbridge("config", "check", "-c", str(write(tmp_path, extra)), cwd=tmp_path,
                       env=SECRET)
    assert result.returncode == 2, result.stdout
    assert f"config error {key}: " in result.stderr
