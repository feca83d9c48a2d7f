"""``smsbridge accounts create|list|show``: the tenants, each with its keys and connections."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import (
    ConfigOpt,
    JsonOpt,
    err,
    friendly_errors,
    key_file_notice,
    load,
    out,
    print_json,
)

if TYPE_CHECKING:
    from ..store.accounts import AccountRecord

accounts_app = typer.Typer(
    help="Accounts (tenants): each has its own API keys, connections, webhooks, messages and "
         "opt-outs, and sees no other's. The default account owns the config file's "
         "connections.",
    no_args_is_help=True)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


@accounts_app.command("create")
@friendly_errors
def create_account(
    name: Annotated[str, typer.Argument(help="What the account is called, e.g. the customer.",
                                        show_default=False)],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an account and print its id (acc_...), and its Twilio-style auth token.

    Example: smsbridge accounts create "Acme Dental"; then give it a key with
    smsbridge keys create --name acme --account acc_...
    """
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> tuple[AccountRecord, str]:
        async with open_gateway(settings, create_secret_key=True) as gw:
            return await gw.create_account_with_token(gw.cli_scope, name)

    notice = key_file_notice(settings)
    record, token = asyncio.run(main())
    notice()
    if as_json:
        print_json({**record.to_dict(), "auth_token": token})
        return
    err.print(f"created account {record.name}; its auth token (the password of Twilio "
              f"clients, its id their AccountSid; `smsbridge accounts token {record.id}` "
              f"shows it again) is {token}; its id:", highlight=False, markup=False,
              soft_wrap=True)
    out.print(record.id, highlight=False, markup=False)


@accounts_app.command("token")
@friendly_errors
def account_token(
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The account's id (acc_...).",
                                              show_default=False)],
    rotate: Annotated[bool, typer.Option(
        "--rotate", help="Make a new token; the old one stops working at once.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the account's Twilio-style auth token (the AccountSid is the account's id).

    Apps written for Twilio use it as their auth token: it authenticates their API calls
    and signs the webhooks and StatusCallbacks they get.
    Example: smsbridge accounts token acc_0123456789abcdef --rotate
    """
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> str:
        async with open_gateway(settings, create_secret_key=True) as gw:
            return await gw.account_auth_token(gw.cli_scope, account_id, rotate=rotate)

    notice = key_file_notice(settings)
    token = asyncio.run(main())
    notice()
    if as_json:
        print_json({"account_sid": account_id, "auth_token": token})
        return
    out.print(token, highlight=False, markup=False)


@accounts_app.command("list")
@friendly_errors
def list_accounts(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the accounts, oldest first; the default one is marked.

    Example: smsbridge accounts list --json
    """
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> tuple[list[AccountRecord], str]:
        async with open_gateway(settings) as gw:
            return await gw.list_accounts(gw.cli_scope), gw.default_account

    records, default = asyncio.run(main())
    if as_json:
        print_json({"data": [r.to_dict() for r in records]})
        return
    from rich.table import Table

    table = Table()
    # Ids are copied from here: whole, on one line; the other columns give way.
    table.add_column("id", no_wrap=True, min_width=max((len(r.id) for r in records), default=2))
    for col in ("name", "created", ""):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(r.id, r.name, _when(r.created_at), "default" if r.id == default else "")
    out.print(table)


@accounts_app.command("show")
@friendly_errors
def show_account(
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The account's id (acc_...).",
                                              show_default=False)],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an account with its API keys and connections.

    Example: smsbridge accounts show acc_0123456789abcdef
    """
    import asyncio

    from ..core.scope import Scope
    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> dict[str, Any]:
        async with open_gateway(settings) as gw:
            record = await gw.get_account(gw.cli_scope, account_id.strip())
            keys = await gw.list_api_keys(record.id)
            connections = gw.list_connections(Scope(record.id, admin=True))
            return {**record.to_dict(), "default": record.id == gw.default_account,
                    "keys": [k.to_dict() for k in keys],
                    "connections": [c["name"] for c in connections]}

    shown = asyncio.run(main())
    if as_json:
        print_json(shown)
        return
    from rich.markup import escape

    default = "  (default account)" if shown["default"] else ""
    out.print(f"[bold]{shown['id']}[/bold]  {escape(shown['name'])}{default}", highlight=False)
    out.print(f"  created:     {shown['created_at']}", highlight=False)
    live = [k for k in shown["keys"] if k["revoked_at"] is None]
    names = ", ".join(f"{k['name']}{' (admin)' if k['admin'] else ''}" for k in live)
    out.print(f"  API keys:    {names or '-'}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"  connections: {', '.join(shown['connections']) or '-'}", highlight=False,
              markup=False, soft_wrap=True)
