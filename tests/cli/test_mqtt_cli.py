"""The [mqtt] table as a user writes it: `config check` names a bad key; the password is secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import smsbridge

SANDBOX = '[[connections]]\nname = "sandbox"\ncarrier = "sandbox"\nnumbers = ["+15555550100"]\n'


@pytest.mark.parametrize(
    ("mqtt", "key", "reason"),
    [
        ('topic_prefix = "sms"\n', "mqtt.url", "is required"),
        ('url = "http://127.0.0.1:1883"\n', "mqtt.url", "mqtt://HOST[:PORT]"),
        ('url = "mqtt://me:secret@127.0.0.1"\n', "mqtt.url", "mqtt.username and mqtt.password"),
        ('url = "mqtt://127.0.0.1:70000"\n', "mqtt.url", "port"),
        ('url = "mqtt://127.0.0.1"\ntopic_prefix = "sms/+"\n', "mqtt.topic_prefix", "'+'"),
        ('url = "mqtt://127.0.0.1"\ntopic_prefix = "home//sms"\n', "mqtt.topic_prefix",
         "none empty"),
        ('url = "mqtt://127.0.0.1"\ntopic_prefix = "$SYS"\n', "mqtt.topic_prefix", "'$'"),
        ('url = "mqtt://127.0.0.1"\ndiscovery = "maybe"\n', "mqtt.discovery", "boolean"),
        ('url = "mqtt://127.0.0.1"\nretain = true\n', "mqtt.retain", "unknown key"),
        ('url = "mqtt://127.0.0.1"\nusername = "gw"\npassword = "${MQTT_PASSWORD_UNSET}"\n',
         "mqtt.password", "environment variable MQTT_PASSWORD_UNSET is not set"),
    ],
)
def test_config_check_names_the_bad_mqtt_key_and_why(tmp_path: Path, mqtt: str, key: str,
                                                    reason: str) -> None:
    (tmp_path / "c.toml").write_text(SANDBOX + "[mqtt]\n" + mqtt)
    result = smsbridge("config", "check", "--config", "c.toml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert key in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_a_good_mqtt_table_passes_and_its_password_is_never_shown(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        SANDBOX + '[mqtt]\nurl = "mqtts://broker.example.com"\nusername = "gateway"\n'
        'password = "${MQTT_PASSWORD}"\ntopic_prefix = "home/sms"\n')
    result = smsbridge("config", "check", "--config", "c.toml", cwd=tmp_path,
                       env={"MQTT_PASSWORD": "broker-pass-913"})
    assert result.returncode == 0, result.stderr
    assert "broker-pass-913" not in result.stdout + result.stderr


def test_commands_that_do_not_serve_need_no_broker_password(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        f'[server]\ndatabase = "sqlite:///{tmp_path}/db.sqlite"\n' + SANDBOX +
        '[mqtt]\nurl = "mqtt://127.0.0.1"\nusername = "gateway"\n'
        'password = "${MQTT_PASSWORD_UNSET}"\n')
    assert smsbridge("migrate", "-c", "c.toml", cwd=tmp_path).returncode == 0
    listed = smsbridge("messages", "-c", "c.toml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
