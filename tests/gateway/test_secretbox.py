"""Carrier secrets at rest: a key from the environment or a 0600 file, checked by the store."""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsbridge.core.errors import SecretKeyError
from smsbridge.gateway.secretbox import (
    ENV_SECRET_KEY,
    SecretBox,
    claim_store_key,
    generate_key,
    open_secret_box,
)
from smsbridge.store import SqlStore
from tests.store.test_store import open_started

PASSWORD = "hunter2-carrier-password"
SETTINGS = {"account_sid": "AC123", "auth_token": "tok-s3cret-ü"}


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without the variable, whatever the shell running pytest has."""
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    s = await open_started(database_url)
    yield s
    await s.close()


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    """A key file in folders that do not exist yet."""
    return tmp_path / "data" / "keys" / "secret.key"


def assert_hidden(text: str, *secrets: str) -> None:
    """None of ``secrets`` appears in ``text``."""
    for secret in secrets:
        assert secret not in text


async def test_a_new_store_gets_a_private_key_file_that_later_starts_reuse(
        store: SqlStore, key_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    box = await open_secret_box(store, key_path)
    key = key_path.read_text().strip()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_path.parent.parent.stat().st_mode) == 0o700
    assert [p.name for p in key_path.parent.iterdir()] == ["secret.key"]  # no temporary left
    created = [r for r in caplog.records if r.name == "smsbridge.secrets"]
    assert len(created) == 1 and created[0].levelno == logging.INFO
    assert str(key_path) in created[0].getMessage()
    assert "back it up" in created[0].getMessage()
    assert_hidden(caplog.text, key)

    token = box.encrypt(PASSWORD)
    caplog.clear()
    again = await open_secret_box(store, key_path)
    assert key_path.read_text().strip() == key
    assert again.decrypt(token) == PASSWORD
    assert not [r for r in caplog.records if r.name == "smsbridge.secrets"]


async def test_secrets_round_trip_and_the_stored_token_shows_nothing(
        store: SqlStore, key_path: Path) -> None:
    box = await open_secret_box(store, key_path)
    token = box.encrypt(PASSWORD)
    assert PASSWORD not in token
    assert box.decrypt(token) == PASSWORD
    sealed = box.encrypt_json(SETTINGS)
    assert_hidden(sealed, "AC123", "tok-s3cret")
    assert box.decrypt_json(sealed) == SETTINGS


async def test_the_environment_key_wins_over_the_key_file(
        store: SqlStore, key_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv(ENV_SECRET_KEY, f"  {key}\n")
    box = await open_secret_box(store, key_path)
    assert not key_path.exists()
    assert SecretBox(key).decrypt(box.encrypt(PASSWORD)) == PASSWORD

    # An existing key file with another key is ignored while the variable is set.
    key_path.parent.mkdir(parents=True)
    key_path.write_text(generate_key())
    assert (await open_secret_box(store, key_path)).decrypt(box.encrypt(PASSWORD)) == PASSWORD


@pytest.mark.parametrize("value", ["not-a-key", "   ", "c2hvcnQta2V5LTE2Ynl0ZQ==",
                                   generate_key()[:-1] + "!"])
async def test_a_malformed_environment_key_stops_the_start(
        store: SqlStore, key_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_SECRET_KEY, value)
    with pytest.raises(SecretKeyError) as info:
        await open_secret_box(store, key_path)
    message = str(info.value)
    assert "$SMSBRIDGE_SECRET_KEY" in message
    assert "Fernet.generate_key().decode()" in message
    if value.strip():
        assert value not in message
    assert not key_path.exists()
    assert await store.get_meta("secret_key_check") is None


async def test_a_malformed_key_file_is_named_and_not_shown(
        store: SqlStore, key_path: Path) -> None:
    key_path.parent.mkdir(parents=True)
    damaged = generate_key()[:30]
    key_path.write_text(damaged)
    with pytest.raises(SecretKeyError) as info:
        await open_secret_box(store, key_path)
    assert str(key_path) in str(info.value)
    assert_hidden(str(info.value), damaged)
    assert key_path.read_text() == damaged  # never overwritten


async def test_a_store_with_secrets_refuses_to_start_without_its_key(
        store: SqlStore, key_path: Path) -> None:
    await claim_store_key(store, await open_secret_box(store, key_path))
    key_path.unlink()
    with pytest.raises(SecretKeyError) as info:
        await open_secret_box(store, key_path)
    assert str(info.value) == (
        "this store holds carrier secrets encrypted with a key that is not here: set "
        f"SMSBRIDGE_SECRET_KEY or restore the key file {key_path}")
    assert not key_path.exists()  # a new key would lock the old secrets away for good


async def test_a_wrong_key_is_refused_whatever_its_source(
        store: SqlStore, key_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await claim_store_key(store, await open_secret_box(store, key_path))

    other_file = tmp_path / "other.key"
    other_key = generate_key()
    other_file.write_text(other_key)
    with pytest.raises(SecretKeyError) as from_file:
        await open_secret_box(store, other_file)
    assert str(from_file.value).startswith(
        f"{other_file} is not the key this store's secrets were encrypted with")

    env_key = generate_key()
    monkeypatch.setenv(ENV_SECRET_KEY, env_key)
    with pytest.raises(SecretKeyError) as from_env:
        await open_secret_box(store, key_path)
    assert str(from_env.value).startswith(
        "$SMSBRIDGE_SECRET_KEY is not the key this store's secrets were encrypted with")

    right_key = key_path.read_text().strip()
    for text in (str(from_file.value), str(from_env.value), caplog.text):
        assert_hidden(text, other_key, env_key, right_key)


async def test_without_create_a_missing_key_is_an_error_and_no_file_appears(
        store: SqlStore, key_path: Path) -> None:
    with pytest.raises(SecretKeyError) as info:
        await open_secret_box(store, key_path, create=False)
    assert str(key_path) in str(info.value) and ENV_SECRET_KEY in str(info.value)
    assert not key_path.exists()
    assert await store.get_meta("secret_key_check") is None


async def test_processes_starting_together_share_one_key_file(
        store: SqlStore, key_path: Path) -> None:
    boxes = await asyncio.gather(*(open_secret_box(store, key_path) for _ in range(4)))
    token = boxes[0].encrypt(PASSWORD)
    assert all(box.decrypt(token) == PASSWORD for box in boxes)
    assert SecretBox(key_path.read_text().strip()).decrypt(token) == PASSWORD


async def test_a_store_without_secrets_takes_any_key_until_one_is_stored(
        store: SqlStore, tmp_path: Path) -> None:
    # Processes with keys of their own start on a store that holds no secret: a gateway
    # that never stores one needs no key shared (nor restored with its backups).
    first = await open_secret_box(store, tmp_path / "a" / "secret.key")
    second = await open_secret_box(store, tmp_path / "b" / "secret.key")
    assert await store.get_meta("secret_key_check") is None
    await claim_store_key(store, first)
    with pytest.raises(SecretKeyError):
        await claim_store_key(store, second)
    with pytest.raises(SecretKeyError):
        await open_secret_box(store, tmp_path / "b" / "secret.key")


async def test_of_two_new_keys_racing_for_one_store_only_the_first_is_accepted(
        store: SqlStore, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "secret.key", tmp_path / "b" / "secret.key"
    opened = [await open_secret_box(store, first), await open_secret_box(store, second)]
    results = await asyncio.gather(*(claim_store_key(store, box) for box in opened),
                                   return_exceptions=True)
    boxes = [box for box, r in zip(opened, results, strict=True) if r is None]
    errors = [r for r in results if isinstance(r, SecretKeyError)]
    assert len(boxes) == 1 and len(errors) == 1
    assert "is not the key this store's secrets were encrypted with" in str(errors[0])
    check = await store.get_meta("secret_key_check")
    assert check is not None
    # The stored check is the winner's, so the winner keeps working on the next start.
    winner = first if results[0] is None else second
    assert (await open_secret_box(store, winner)).decrypt(boxes[0].encrypt("x")) == "x"


def test_a_token_from_another_key_does_not_decrypt_and_says_nothing() -> None:
    key, other = generate_key(), generate_key()
    token = SecretBox(key).encrypt(PASSWORD)
    sealed = SecretBox(key).encrypt_json(SETTINGS)
    for attempt in (lambda: SecretBox(other).decrypt(token),
                    lambda: SecretBox(other).decrypt_json(sealed),
                    lambda: SecretBox(key).decrypt(token[:-4] + "AAAA"),
                    lambda: SecretBox(key).decrypt("not a token at all")):
        with pytest.raises(SecretKeyError) as info:
            attempt()
        assert_hidden(str(info.value), PASSWORD, "tok-s3cret", key, other)
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_token_of_something_other_than_an_object_is_refused_by_decrypt_json() -> None:
    box = SecretBox(generate_key())
    with pytest.raises(SecretKeyError) as info:
        box.decrypt_json(box.encrypt(f"[{PASSWORD!r}"))
    assert_hidden(str(info.value), PASSWORD)
    assert info.value.__context__ is None


def test_the_box_never_shows_its_key() -> None:
    key = generate_key()
    raw = base64.urlsafe_b64decode(key)
    box = SecretBox(key)
    for text in (str(box), repr(box), f"{box}", f"{box!r}", repr([box])):
        assert_hidden(text, key, key.rstrip("="), repr(raw[:16])[2:-1], raw.hex()[:32])
    assert not hasattr(box, "__dict__")
    with pytest.raises(SecretKeyError) as info:
        SecretBox(key[:-2])
    assert_hidden(str(info.value), key[:-2])
