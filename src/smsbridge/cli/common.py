"""What every command shares: the consoles, the error handling, loading the settings, JSON."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ..core.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SecretKeyError,
    SmsBridgeError,
    StoreUnavailable,
)
from ..core.scope import Scope

if TYPE_CHECKING:
    from ..gateway.config import Settings
    from ..gateway.service import Gateway

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", show_default=False,
                 help="TOML config file (default: $SMSBRIDGE_CONFIG; without either: SQLite in "
                      "the data folder and the sandbox carrier)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AccountOpt = Annotated[
    str | None,
    typer.Option("--account", metavar="ID", show_default=False,
                 help="The account (acc_...) to act in, as `smsbridge accounts list` shows "
                      "them (default: the default account)."),
]
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line on stderr and exit with ``code``."""
    err.print(message, highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print a warning line on stderr."""
    from rich.markup import escape

    err.print(f"[yellow]warning[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def friendly_errors(func: F) -> F:
    """Turn smsbridge errors into one clear line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(f"config error {exc.key}: {exc.reason}")
        except InvalidInput as exc:
            fail(f"invalid {exc.field}: {exc.reason}")
        except Conflict as exc:
            fail(f"conflict on {exc.field}: {exc.reason}")
        except StoreUnavailable as exc:
            fail(f"error: {exc.reason}")
        except NotFound as exc:
            fail(f"error: {exc}", 1)
        except Forbidden as exc:
            fail(f"forbidden: {exc}", 1)
        except SecretKeyError as exc:
            fail(f"secret key error: {exc}", 1)
        except SmsBridgeError as exc:
            fail(f"error: {exc}", 1)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def load(config: Path | None, *, secrets: bool) -> Settings:
    """The settings; with ``secrets=False`` carrier secrets are left for where they are used."""
    from ..gateway.config import load_settings

    return load_settings(config, secrets=secrets)


async def scope_of(gateway: Gateway, account: str | None) -> Scope:
    """What the CLI acts as: the operator, within ``account`` (default: the default
    account); NotFound for an account that does not exist."""
    if account is None:
        return gateway.cli_scope
    record = await gateway.get_account(gateway.cli_scope, account.strip())
    return Scope(record.id, admin=True)


def print_json(data: Any) -> None:
    """Indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def print_warnings(settings: Settings) -> None:
    """The config's warnings, one line each on stderr."""
    for text in settings.warnings:
        warn(text)


def unreachable_warning(settings: Settings, base_url: str,
                        carriers: Iterable[str] | None = None) -> None:
    """Say so when carriers cannot call ``base_url``, and how to fix it.

    ``carriers``: the carriers of the connections shown (default: the config file's).
    """
    from ..gateway.config import carrier_unreachable_reason

    if carriers is None:
        carriers = [c.carrier for c in settings.connections.values()]
    # The sandbox is played from this machine; only real carriers call from outside.
    real = sorted({carrier for carrier in carriers if carrier != "sandbox"})
    reason = carrier_unreachable_reason(base_url)
    if not real or reason is None:
        return
    warn(f"{reason}: {', '.join(real)} cannot call the webhook URLs built from it, so they "
         "will not work in the carrier's portal. Set server.public_url to the address "
         "carriers reach, e.g. https://sms.example.com on a reverse proxy with TLS that "
         "forwards to server.listen.")


def key_file_notice(settings: Settings) -> Callable[[], None]:
    """Before a command that may create the secret key file: a function that, called after
    it, says so once when it did (the file must be backed up)."""
    key_file = settings.secret_key_path
    had_key = key_file.exists() or "SMSBRIDGE_SECRET_KEY" in os.environ

    def notice() -> None:
        if not had_key and key_file.exists():
            warn(f"created the secret key file {key_file}: back it up, apart from the "
                 "database backups; without it the carrier secrets stored now cannot be read")

    return notice
