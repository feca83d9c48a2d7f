"""``smsbridge connections add|list|show|update|remove``: carrier connections kept in the store.

They are added at run time, belong to one account, and reach every running gateway within
seconds; the config file's connections are listed too (read-only). Their settings are
encrypted with the secret key and never shown again: a secret is only said to be set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar

import typer

from ..core.errors import InvalidInput, NotFound, SmsBridgeError
from .common import (
    AccountOpt,
    ConfigOpt,
    JsonOpt,
    err,
    fail,
    friendly_errors,
    key_file_notice,
    load,
    out,
    print_json,
    scope_of,
    unreachable_warning,
)

if TYPE_CHECKING:
    from ..core.scope import Scope
    from ..gateway.config import Settings
    from ..gateway.service import Gateway

T = TypeVar("T")

connections_app = typer.Typer(
    help="Carrier connections added at run time, per account: add one and paste the webhook "
         "URL it prints into the carrier's portal; no restart.",
    no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The connection's name.", show_default=False)]
NumberOpt = Annotated[list[str] | None, typer.Option(
    "--number", "-n", metavar="NUMBER", show_default=False,
    help="A number of this connection, e.g. +15145550100 (repeat for more).")]
SettingOpt = Annotated[list[str] | None, typer.Option(
    "--setting", "-s", metavar="KEY=VALUE", show_default=False,
    help="A carrier setting (repeat for more; `smsbridge carriers describe CARRIER` lists "
         "them). For a secret prefer KEY=@FILE (read from a file) or KEY=- (one line from "
         "stdin) or KEY=env:VAR: what is typed on the command line stays in the shell's "
         "history and the process list.")]
SettingsJsonOpt = Annotated[str | None, typer.Option(
    "--settings-json", metavar="FILE|-", show_default=False,
    help="A JSON object of carrier settings, from a file or stdin (-); --setting wins "
         "over it.")]

SECRET_HINT = ("Secrets: give them as KEY=@FILE, KEY=- (stdin) or KEY=env:VAR rather than "
               "on the command line.")


class _Stdin:
    """Standard input, read at most once: by one --setting KEY=- or by --settings-json -."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.used_by: str | None = None

    def read(self, who: str, *, whole: bool) -> str:
        if self.used_by is not None:
            raise InvalidInput(who, f"standard input is already read for {self.used_by}")
        self.used_by = who
        if not whole:
            return self.stream.readline().rstrip("\r\n")
        return self.stream.read()


def _value(key: str, raw: str, stdin: _Stdin) -> str:
    """A --setting value, resolved: @FILE, - (stdin) and env:VAR are read, the rest kept."""
    field = f"settings.{key}"
    if raw == "-":
        return stdin.read(field, whole=False)
    if raw.startswith("@"):
        path = Path(raw[1:]).expanduser()
        try:
            # A secret file usually ends with a line break that is no part of the secret.
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InvalidInput(field, f"cannot read {path}: {exc.strerror or exc}") from None
    if raw.startswith("env:"):
        name = raw[4:]
        value = os.environ.get(name)
        if not name or value is None:
            raise InvalidInput(field, f"environment variable {name or '(none)'} is not set")
        return value
    return raw


def parse_settings(pairs: list[str], settings_json: str | None, stdin: TextIO,
                   unset: list[str] | None = None) -> dict[str, Any]:
    """The carrier settings given by --settings-json, --setting KEY=VALUE and --unset KEY.

    An unset key maps to None (the gateway then removes it).
    """
    reader = _Stdin(stdin)
    settings: dict[str, Any] = {}
    if settings_json is not None:
        if settings_json == "-":
            text = reader.read("settings-json", whole=True)
        else:
            try:
                text = Path(settings_json).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidInput("settings-json", f"cannot read {settings_json}: "
                                   f"{exc.strerror or exc}") from None
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("settings-json", f"is not JSON ({exc.msg} at line "
                                                f"{exc.lineno})") from None
        if not isinstance(loaded, dict):
            raise InvalidInput("settings-json", "must be a JSON object of settings")
        settings.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            # The value is not echoed: it may be a secret typed in the wrong place.
            raise InvalidInput("setting", "must be KEY=VALUE (for a secret: KEY=@FILE, KEY=- "
                                          "or KEY=env:VAR)")
        settings[key] = _value(key, raw, reader)
    for key in unset or []:
        settings[key.strip()] = None
    return settings


def _run(config: Path | None, use: Callable[[Gateway], Awaitable[T]], *,
         stores_secrets: bool = False) -> tuple[T, Settings]:
    """``use`` a gateway on the configured database; what it gives, and the gateway's
    settings (those its webhook URLs are built on)."""
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)
    notice = key_file_notice(settings)

    async def main() -> tuple[T, Settings]:
        async with open_gateway(settings, create_secret_key=stores_secrets) as gateway:
            return await use(gateway), gateway.settings

    result = asyncio.run(main())
    notice()
    return result


def _not_found(exc: NotFound, account: str | None) -> SmsBridgeError:
    """A connection not in the default account may well be another account's: say so."""
    if exc.what == "connection" and account is None:
        return SmsBridgeError(f"no connection {exc.name!r} in the default account (another "
                              "account's takes --account ID)")
    return exc


def print_connection(row: dict[str, Any], *, with_settings: bool = False) -> None:
    """A connection as the commands show it: numbers, webhook URLs and the setup hint."""
    from rich.markup import escape

    source = "" if row.get("source", "config") == "config" else ", added at run time"
    out.print(f"[bold]{escape(row['name'])}[/bold] ({escape(row['carrier'])}{source})  "
              f"numbers: {', '.join(row['numbers']) or '-'}", highlight=False)
    if row.get("inbound_url"):
        out.print(f"  inbound: {row['inbound_url']}", highlight=False, soft_wrap=True,
                  markup=False)
    else:
        out.print("  inbound: (no webhook URL yet: start `smsbridge serve` once)",
                  highlight=False, markup=False)
    if row.get("status_url"):
        out.print(f"  status:  {row['status_url']}", highlight=False, soft_wrap=True,
                  markup=False)
    if with_settings and row.get("settings"):
        shown = ", ".join(f"{key}={value}" for key, value in row["settings"].items())
        out.print(f"  settings: {shown}", highlight=False, soft_wrap=True, markup=False)
    if row.get("setup"):
        for line in str(row["setup"]).splitlines():
            out.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


def _print_one(row: dict[str, Any], settings: Settings, as_json: bool) -> None:
    if as_json:
        print_json(row)
        return
    print_connection(row, with_settings=True)
    unreachable_warning(settings, settings.server.base_url, [row["carrier"]])


# Rich keeps a docstring's line breaks, so each help is written as single-line paragraphs.
ADD_HELP = (
    "Add a carrier connection to an account and print the webhook URLs to give the carrier."
    "\n\nExample: smsbridge connections add acme --carrier voipms --number +15145550100 "
    "--setting username=me@example.com --setting api_password=@voipms-password.txt"
    "\n\nThe name is part of its webhook URLs: letters, digits, _ and -. A number belongs to "
    "one connection only. The settings are encrypted with the secret key ($SMSBRIDGE_SECRET_KEY "
    "or the key file, made on first use: back it up)."
)
UPDATE_HELP = (
    "Change a connection's numbers or settings; the settings not given are kept."
    "\n\nExample: smsbridge connections update acme --number +15145550100 --number "
    "+15145550101 --setting api_password=@new-password.txt"
    "\n\nConnections from the config file are changed there, not here."
)


@connections_app.command("add", help=ADD_HELP)
@friendly_errors
def add_connection(
    name: NameArg,
    carrier: Annotated[str, typer.Option(
        help="The carrier, as `smsbridge carriers --available` lists them (e.g. voipms).",
        show_default=False)],
    number: NumberOpt = None,
    setting: SettingOpt = None,
    settings_json: SettingsJsonOpt = None,
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a carrier connection to an account; print its webhook URLs."""
    settings = parse_settings(setting or [], settings_json, sys.stdin)

    async def use(gw: Gateway) -> dict[str, Any]:
        return await gw.add_connection(await scope_of(gw, account), name, carrier,
                                       number or [], settings)

    row, served = _run(config, use, stores_secrets=True)
    if not as_json:
        err.print(f"added connection {row['name']}; give the carrier its webhook URL (it "
                  "holds the connection's secret token):", highlight=False, markup=False,
                  soft_wrap=True)
    _print_one(row, served, as_json)


@connections_app.command("list")
@friendly_errors
def list_connections(
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List an account's connections with their numbers and webhook URLs (never a secret).

    Example: smsbridge connections list --account acc_0123456789abcdef
    """
    async def use(gw: Gateway) -> list[dict[str, Any]]:
        return gw.list_connections(await scope_of(gw, account))

    rows, served = _run(config, use)
    if as_json:
        print_json({"data": rows})
        return
    if not rows:
        out.print("no connections in this account; add one with `smsbridge connections add`",
                  highlight=False)
    for row in rows:
        print_connection(row)
    unreachable_warning(served, served.server.base_url, [r["carrier"] for r in rows])


@connections_app.command("show")
@friendly_errors
def show_connection(
    name: NameArg,
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one connection: numbers, webhook URLs, setup hint, settings (secrets only as set).

    Example: smsbridge connections show acme --account acc_0123456789abcdef
    """
    async def use(gw: Gateway) -> dict[str, Any]:
        scope = await scope_of(gw, account)
        try:
            return gw.get_connection(scope, name)
        except NotFound as exc:
            raise _not_found(exc, account) from None

    row, served = _run(config, use)
    _print_one(row, served, as_json)


@connections_app.command("update", help=UPDATE_HELP)
@friendly_errors
def update_connection(
    name: NameArg,
    number: Annotated[list[str] | None, typer.Option(
        "--number", "-n", metavar="NUMBER", show_default=False,
        help="The connection's numbers (repeat for more): they replace the current ones.")
    ] = None,
    setting: SettingOpt = None,
    settings_json: SettingsJsonOpt = None,
    unset: Annotated[list[str] | None, typer.Option(
        "--unset", metavar="KEY", show_default=False,
        help="Remove a setting (back to the carrier's default; repeat for more).")] = None,
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a connection's numbers or settings."""
    settings = parse_settings(setting or [], settings_json, sys.stdin, unset)
    if not number and not settings:
        fail("nothing to change: give --number, --setting, --settings-json or --unset")

    async def use(gw: Gateway) -> dict[str, Any]:
        scope = await scope_of(gw, account)
        try:
            return await gw.update_connection(scope, name, numbers=number or None,
                                              settings=settings or None)
        except NotFound as exc:
            raise _not_found(exc, account) from None

    row, served = _run(config, use, stores_secrets=True)
    if not as_json:
        err.print(f"changed connection {row['name']}", highlight=False, markup=False)
    _print_one(row, served, as_json)


@connections_app.command("remove")
@friendly_errors
def remove_connection(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    account: AccountOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove a connection: its webhook URLs stop working on every gateway within seconds.

    Example: smsbridge connections remove acme --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            fail(f"removing {name} cannot be undone: pass --yes to confirm")
        typer.confirm(f"Remove connection {name}? Its webhook URLs stop working", abort=True)

    async def use(gw: Gateway) -> Scope:
        scope = await scope_of(gw, account)
        try:
            await gw.remove_connection(scope, name)
        except NotFound as exc:
            raise _not_found(exc, account) from None
        return scope

    scope, _ = _run(config, use)
    out.print(f"removed connection {name} from account {scope.account_id}", highlight=False,
              markup=False)
