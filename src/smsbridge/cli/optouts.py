"""``smsbridge optouts list|add|remove``: an account's opt-out list, kept per sending number."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from .common import (
    AccountOpt,
    ConfigOpt,
    JsonOpt,
    fail,
    friendly_errors,
    load,
    out,
    print_json,
    scope_of,
)

if TYPE_CHECKING:
    from ..gateway.optouts import OptoutList

T = TypeVar("T")

optouts_app = typer.Typer(
    help="The opt-out list: the recipients each of your numbers sends nothing to (they "
         "texted STOP, their carrier refused a send, or they were added here or by the API).",
    no_args_is_help=True)

FromOpt = Annotated[str, typer.Option("--from", help="One of your numbers: whose list.")]


def _run(config: Path | None, account: str | None,
         use: Callable[[OptoutList], Awaitable[T]]) -> T:
    """``use`` the opt-out list of ``account`` (default: the default account's), and
    return what it gives."""
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> T:
        async with open_gateway(settings) as gateway:
            scope = await scope_of(gateway, account)
            return await use(gateway.optouts(scope.account_id))

    return asyncio.run(main())


@optouts_app.command("list")
@friendly_errors
def list_optouts(
    from_: Annotated[str | None, typer.Option("--from", help="Only this number's list.")
                     ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Only this recipient.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many.")] = 100,
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List opted-out recipients, newest first."""
    page = _run(config, account, lambda optouts: optouts.list(from_, to, limit=limit))
    if as_json:
        print_json({"data": [e.to_dict() for e in page.entries]})
        return
    from rich.table import Table

    table = Table(title=None if page.entries else "no one has opted out")
    for col in ("from", "to", "source", "since"):
        table.add_column(col)
    for e in page.entries:
        table.add_row(e.from_number, e.to_number, e.source,
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created_at)))
    out.print(table)


@optouts_app.command("add")
@friendly_errors
def add_optout(
    from_: FromOpt,
    to: Annotated[str, typer.Option("--to", help="The recipient to send nothing to.")],
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a recipient on one of your numbers' opt-out list: sends to it are refused."""
    record, added = _run(config, account, lambda optouts: optouts.add(from_, to, "cli"))
    if as_json:
        print_json(record.to_dict())
        return
    verb = "opted out" if added else f"was already opted out ({record.source})"
    out.print(f"{record.to_number} {verb} of {record.from_number}: sends to it are refused",
              highlight=False)


@optouts_app.command("remove")
@friendly_errors
def remove_optout(
    number: Annotated[str, typer.Argument(help="The recipient to take off the list.")],
    from_: FromOpt,
    account: AccountOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a recipient off one of your numbers' opt-out list (only with its consent)."""
    record = _run(config, account, lambda optouts: optouts.remove(from_, number))
    if record is None:
        fail(f"{number} is not on the opt-out list of {from_}", 1)
    if as_json:
        print_json(record.to_dict())
        return
    out.print(f"{record.to_number} taken off the opt-out list of {record.from_number}",
              highlight=False)
