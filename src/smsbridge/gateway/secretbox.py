"""Carrier secrets encrypted at rest: a Fernet key from the environment or a key file.

Connections created through the API keep their settings (passwords, API tokens) in the
store, encrypted with the gateway's secret key, so a copied database gives no password
away. The key is ``$SMSBRIDGE_SECRET_KEY`` when set, else the key file (``[server]
secret_key_file``), created with mode 0600 on the first start. The store remembers which
key it was used with (a check token under the meta key ``secret_key_check``), so a missing
or different key stops the start with a clear error instead of failing on each secret.
Neither the key nor a decrypted secret is ever put in a message, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ..core.errors import SecretKeyError
from ..store.base import Store

__all__ = ["ENV_SECRET_KEY", "SecretBox", "claim_store_key", "generate_key",
           "open_secret_box"]

ENV_SECRET_KEY = "SMSBRIDGE_SECRET_KEY"
ENV_SOURCE = f"${ENV_SECRET_KEY}"
CHECK_META_KEY = "secret_key_check"
# Encrypted into the check token; it is a constant, so the token reveals nothing.
CHECK_MARKER = "smsbridge secret key check v1"
MAKE_KEY_HINT = ('make one with: python -c "from cryptography.fernet import Fernet; '
                 'print(Fernet.generate_key().decode())"')

# 32 bytes in url-safe base64 are exactly 43 letters and one "=". Checked before Fernet
# sees the key because its decoder silently drops letters outside the alphabet.
_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")

log = logging.getLogger("smsbridge.secrets")


class SecretBox:
    """Encrypts and decrypts stored secrets with one Fernet key; never shows the key."""

    __slots__ = ("_fernet",)

    def __init__(self, key: str | bytes) -> None:
        text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
        if not _FERNET_KEY.fullmatch(text):
            raise SecretKeyError("the secret key is not a Fernet key (32 url-safe base64 "
                                 f"bytes); {MAKE_KEY_HINT}")
        self._fernet = Fernet(text.encode("ascii"))

    def __repr__(self) -> str:
        return "<SecretBox key=hidden>"

    __str__ = __repr__

    def encrypt(self, text: str) -> str:
        """``text`` encrypted and authenticated, as a url-safe token."""
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The text of a token made by ``encrypt`` with this key; SecretKeyError otherwise."""
        try:
            data = self._fernet.decrypt(token)
        except (InvalidToken, TypeError, ValueError):
            # from None: the cause would add nothing a reader needs.
            raise SecretKeyError("a stored secret does not decrypt with this secret key: it "
                                 "was encrypted with another key or is damaged") from None
        return data.decode("utf-8")

    def encrypt_json(self, obj: dict[str, Any]) -> str:
        """A JSON object (such as a connection's settings) encrypted as one token."""
        return self.encrypt(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        """The JSON object of a token made by ``encrypt_json`` with this key."""
        text = self.decrypt(token)
        try:
            obj = json.loads(text)
        except ValueError:
            # Raised below, outside this block: a JSONDecodeError carries the decrypted text.
            obj = None
        if not isinstance(obj, dict):
            raise SecretKeyError("a stored secret decrypts but is not a JSON object; it is "
                                 "damaged")
        return obj

    def opens(self, token: str) -> bool:
        """Whether ``token`` is the store's key check made with this key."""
        try:
            return secrets.compare_digest(self.decrypt(token), CHECK_MARKER)
        except SecretKeyError:
            return False


def generate_key() -> str:
    """A new random Fernet key, as text for the environment or a key file."""
    return Fernet.generate_key().decode("ascii")


async def open_secret_box(store: Store, key_path: Path, *, create: bool = True) -> SecretBox:
    """The box of this store's secret key, creating the key file on the first start.

    Raises SecretKeyError when the key is malformed, missing while the store holds a key
    check, missing and ``create`` is False, or not the key the store's secrets use.
    """
    check = await store.get_meta(CHECK_META_KEY)
    env_value = os.environ.get(ENV_SECRET_KEY)
    if env_value is not None:
        box, source = _box_from_env(env_value, key_path), ENV_SOURCE
    else:
        source = str(key_path)
        found = await asyncio.to_thread(_box_from_file, key_path)
        if found is not None:
            box = found
        else:
            if check is not None:
                raise SecretKeyError(
                    "this store holds carrier secrets encrypted with a key that is not here: "
                    f"set {ENV_SECRET_KEY} or restore the key file {key_path}")
            if not create:
                raise SecretKeyError(
                    f"no secret key: set {ENV_SECRET_KEY} or create the key file {key_path} "
                    f"(`smsbridge serve` creates it on its first start); {MAKE_KEY_HINT}")
            box = await asyncio.to_thread(_create_key_file, key_path)
    if check is not None and not box.opens(check):
        raise SecretKeyError(_not_the_key(source))
    # A store that holds no secret yet takes this key: it is bound to it when the first
    # secret is stored (claim_store_key), so a gateway that never stores one needs no key
    # shared between its processes, nor one restored with its backups.
    return box


async def claim_store_key(store: Store, box: SecretBox) -> None:
    """Bind the store to ``box``'s key before the first secret is stored in it.

    SecretKeyError when the store is bound to another key (another process, started with a
    different key, stored a secret first).
    """
    check = await store.claim_meta(CHECK_META_KEY, box.encrypt(CHECK_MARKER))
    if not box.opens(check):
        raise SecretKeyError(_not_the_key("this process's secret key"))


def _not_the_key(source: str) -> str:
    return (f"{source} is not the key this store's secrets were encrypted with; use that key "
            "or restore its key file")


def _box_from_env(value: str, key_path: Path) -> SecretBox:
    """The box of the key in the environment variable (never echoed in errors)."""
    value = value.strip()
    if not value:
        raise SecretKeyError(f"{ENV_SOURCE} is set but empty: unset it to use the key file "
                             f"{key_path}, or set it to a Fernet key; {MAKE_KEY_HINT}")
    try:
        return SecretBox(value)
    except SecretKeyError:
        raise SecretKeyError(f"{ENV_SOURCE} is not a Fernet key (32 url-safe base64 "
                             f"bytes); {MAKE_KEY_HINT}") from None


def _box_from_file(path: Path) -> SecretBox | None:
    """The box of the key in ``path``, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretKeyError(f"the secret key file {path} cannot be read: "
                             f"{exc.strerror or type(exc).__name__}") from None
    try:
        box = SecretBox(text.strip())
    except SecretKeyError:
        raise SecretKeyError(f"the secret key file {path} does not hold a Fernet key (32 "
                             "url-safe base64 bytes); restore it from its backup") from None
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("the secret key file %s can be read by other users (mode %03o): "
                        "chmod 600 it", path, mode)
    return box


def _create_key_file(path: Path) -> SecretBox:
    """Write a new key to ``path`` (0600), or read the one another process wrote first."""
    _make_private_dirs(path.parent)
    key = generate_key()
    # Written to a private temporary file and hard-linked into place: the link fails if
    # the key file exists, so a concurrent starter never truncates it nor reads it half
    # written.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            existing = _box_from_file(path)
            if existing is None:
                raise SecretKeyError(f"the secret key file {path} appeared and vanished "
                                     "while this start created it; start again") from None
            return existing
        except OSError:
            # A filesystem without hard links: create the key file itself, exclusively.
            if not _write_exclusive(path, key):
                existing = _box_from_file(path)
                if existing is None:
                    raise SecretKeyError(f"the secret key file {path} cannot be created; "
                                         "start again") from None
                return existing
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    _sync_dir(path.parent)
    log.info("created the secret key file %s; back it up: without it stored carrier "
             "secrets cannot be read", path)
    return SecretBox(key)


def _write_exclusive(path: Path, key: str) -> bool:
    """Create ``path`` (0600) holding ``key``; False if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())
    return True


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def _sync_dir(directory: Path) -> None:
    """Make a new directory entry durable, so a crash cannot lose a key already in use."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
