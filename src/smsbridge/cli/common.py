"""What every command shares: the consoles, the error handling, loading the settings, JSON."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ..core.errors import ConfigError, InvalidInput, SmsBridgeError, StoreUnavailable

if TYPE_CHECKING:
    from ..gateway.config import Settings

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", show_default=False,
                 help="TOML config file (default: $SMSBRIDGE_CONFIG; without either: SQLite in "
                      "the data folder and the sandbox carrier)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
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
        except StoreUnavailable as exc:
            fail(f"error: {exc.reason}")
        except SmsBridgeError as exc:
            fail(f"error: {exc}", 1)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def load(config: Path | None, *, secrets: bool) -> Settings:
    """The settings; with ``secrets=False`` carrier secrets are left for where they are used."""
    from ..gateway.config import load_settings

    return load_settings(config, secrets=secrets)


def print_json(data: Any) -> None:
    """Indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def print_warnings(settings: Settings) -> None:
    """The config's warnings, one line each on stderr."""
    for text in settings.warnings:
        warn(text)


def unreachable_warning(settings: Settings, base_url: str) -> None:
    """Say so when carriers cannot call ``base_url``, and how to fix it."""
    from ..gateway.config import carrier_unreachable_reason

    # The sandbox is played from this machine; only real carriers call from outside.
    real = sorted({c.carrier for c in settings.connections.values() if c.carrier != "sandbox"})
    reason = carrier_unreachable_reason(base_url)
    if not real or reason is None:
        return
    warn(f"{reason}: {', '.join(real)} cannot call the webhook URLs built from it, so they "
         "will not work in the carrier's portal. Set server.public_url to the address "
         "carriers reach, e.g. https://sms.example.com on a reverse proxy with TLS that "
         "forwards to server.listen.")
