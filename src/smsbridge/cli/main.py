"""The ``smsbridge`` command: serve, worker, send, call, messages, carriers, keys, accounts,
connections, sandbox, config.

Every command but serve, worker and migrate acts through the gateway service (gateway/admin.py
opens it), where account scoping lives. Each imports what it uses inside its body: listing
messages needs neither the web server nor Alembic.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.errors import InvalidInput, SmsBridgeError
from ..core.messages import Direction, MessageStatus
from .accounts import accounts_app
from .calls import call
from .common import (
    AccountOpt,
    ConfigOpt,
    JsonOpt,
    err,
    fail,
    friendly_errors,
    load,
    out,
    print_json,
    print_warnings,
    scope_of,
    unreachable_warning,
)
from .connections import connections_app, print_connection
from .optouts import optouts_app
from .rules import rules_app

if TYPE_CHECKING:
    from rich.table import Table

    from ..core.messages import Message
    from ..gateway.config import Settings
    from ..gateway.service import MediaInput
    from ..store.base import ApiKeyRecord

app = typer.Typer(
    name="smsbridge",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
carriers_app = typer.Typer(help="The default account's carrier connections and the webhook "
                                "URLs to give each carrier (each URL holds the connection's "
                                "secret token; other accounts': `smsbridge connections list "
                                "--account ID`); with --available or describe, the carriers "
                                "smsbridge can use.",
                           invoke_without_command=True)
keys_app = typer.Typer(help="API keys, each of one account (stored hashed; a key is shown "
                                "once).", no_args_is_help=True)
sandbox_app = typer.Typer(help="Play traffic through the built-in sandbox carrier.",
                          no_args_is_help=True)
config_app = typer.Typer(help="Check the configuration file.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(connections_app, name="connections")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")
app.add_typer(optouts_app, name="optouts")
app.add_typer(rules_app, name="rules")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"smsbridge {__version__}\n")
        raise typer.Exit()


# Rich keeps a docstring's line breaks, so the help's paragraphs are written as single lines.
MAIN_HELP = (
    "Self-hosted SMS/MMS gateway: one API and one webhook format for every carrier.\n\n"
    "The config file is --config or $SMSBRIDGE_CONFIG. Without a database in it, the data "
    "lives in $SMSBRIDGE_DATA_DIR, else $XDG_DATA_HOME/smsbridge, else "
    "~/.local/share/smsbridge."
)


@app.callback(help=MAIN_HELP)
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """The smsbridge command (its help is MAIN_HELP)."""


# ---------------------------------------------------------------- serve / worker / migrate
@app.command()
@friendly_errors
def serve(
    config: ConfigOpt = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT, overrides server.listen.")
                      ] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve HTTP only; run "
                                            "`smsbridge worker` elsewhere to send.")] = False,
) -> None:
    """Run the gateway: the HTTP API, carrier webhooks and (unless --no-worker) the workers.

    Applies migrations, and on first start prints an API key.
    """
    from .serving import serve as run_serve

    run_serve(config, listen, no_worker)


@app.command()
@friendly_errors
def worker(config: ConfigOpt = None) -> None:
    """Run only the workers (outbox and app webhooks), beside one or more `serve --no-worker`."""
    from .serving import worker as run_worker

    run_worker(config)


@app.command()
@friendly_errors
def migrate(config: ConfigOpt = None) -> None:
    """Apply the database migrations (serve and worker also do this on start)."""
    from .serving import migrate as run_migrate

    run_migrate(config)


# ---------------------------------------------------------------- send / messages
@app.command()
@friendly_errors
def send(
    from_: Annotated[str, typer.Option("--from", help="One of your numbers.")],
    to: Annotated[str, typer.Option("--to", help="The recipient.")],
    text: Annotated[str, typer.Option("--text", "-t", help="The message text.")] = "",
    media: Annotated[list[str] | None, typer.Option(
        "--media", "-m", help="A file or an http(s) URL to attach (repeat for more).")] = None,
    connection: Annotated[str | None, typer.Option(help="Connection to use (default: the "
                                                   "one that owns --from).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Send at most once per key.")
                               ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a message; the running `serve` or `worker` sends it."""
    import asyncio

    from ..gateway.admin import open_gateway
    from ..gateway.service import SendRequest

    settings = load(config, secrets=True)
    items = [_media_input(m, settings.server.max_media_bytes) for m in (media or [])]

    async def main() -> tuple[Message, bool]:
        async with open_gateway(settings) as gw:
            return await gw.send(SendRequest(from_, to, text, items, connection), idempotency_key)

    message, created = asyncio.run(main())
    if as_json:
        print_json(message.to_dict())
        return
    verb = "queued" if created else "already queued (same idempotency key)"
    out.print(f"{verb} [bold]{message.id}[/bold] {message.from_number} -> {message.to_number} "
              f"via {message.connection} ({message.segments} segment(s), {message.encoding}); "
              f"status: {message.status.value}", highlight=False)


app.command()(call)


def _media_input(value: str, limit: int) -> MediaInput:
    import base64
    import mimetypes

    from ..gateway.service import MediaInput

    if value.startswith(("http://", "https://")):
        return MediaInput(url=value)
    path = Path(value)
    if not path.is_file():
        raise InvalidInput("media", f"{value} is neither an http(s) URL nor a readable file")
    size = path.stat().st_size
    if size > limit:
        raise InvalidInput("media", f"{value} is {size} bytes; the limit is {limit}")
    content_type = mimetypes.guess_type(path.name)[0]
    if content_type is None:
        raise InvalidInput("media", f"cannot tell the type of {value} from its name")
    return MediaInput(data_base64=base64.b64encode(path.read_bytes()).decode(),
                      content_type=content_type)


@app.command()
@friendly_errors
def messages(
    number: Annotated[str | None, typer.Option(help="Only messages from or to this number.")
                      ] = None,
    direction: Annotated[Direction | None, typer.Option(help="inbound or outbound.")] = None,
    status: Annotated[MessageStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new and "
                                         "changed messages until Ctrl-C.")] = False,
    account: Annotated[str | None, typer.Option(
        "--account", metavar="ID", show_default=False,
        help="Only this account's messages (default: every account's).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List messages, newest first."""
    import asyncio

    from ..core.phone import to_e164
    from ..gateway.admin import open_gateway
    from ..store.base import MessageFilter

    settings = load(config, secrets=False)
    if number:
        number = to_e164(number, settings.server.default_region, field="number")

    async def main() -> None:
        async with open_gateway(settings) as gw:
            # The operator sees every account's messages unless one is asked for.
            account_id = None if account is None else (await scope_of(gw, account)).account_id
            filt = MessageFilter(number, direction, status, account_id=account_id)
            page = await gw.list_messages(filt, limit, None)
            if as_json and not follow:
                print_json({"data": [m.to_dict() for m in page.messages],
                            "next_cursor": page.next_cursor})
                return
            if not follow:
                out.print(_message_table(page.messages))
                return
            seen: dict[str, str] = {}
            for m in reversed(page.messages):
                _print_follow(m, as_json)
                seen[m.id] = f"{m.status}{m.updated_at}"
            while True:
                await asyncio.sleep(1.0)
                latest = await gw.list_messages(filt, 100, None)
                for m in reversed(latest.messages):
                    stamp = f"{m.status}{m.updated_at}"
                    if seen.get(m.id) != stamp:
                        seen[m.id] = stamp
                        _print_follow(m, as_json)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _print_follow(m: Message, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(m.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    arrow = "<-" if m.direction is Direction.INBOUND else "->"
    out.print(f"{m.updated_at:%H:%M:%S} {m.id} {m.status.value:<9} {m.from_number} {arrow} "
              f"{m.to_number} {m.text[:60]!r}", highlight=False, soft_wrap=True)


def _message_table(rows: list[Message]) -> Table:
    from rich.table import Table

    table = Table(title=None if rows else "no messages")
    for col in ("id", "when", "dir", "from", "to", "status", "text", "error"):
        table.add_column(col, overflow="fold")
    for m in rows:
        table.add_row(m.id, f"{m.created_at:%Y-%m-%d %H:%M:%S}", m.direction.value[:3],
                      m.from_number, m.to_number, m.status.value,
                      (m.text[:50] + ("…" if len(m.text) > 50 else "")).replace("\n", " "),
                      m.error_reason or "")
    return table


# ---------------------------------------------------------------- carriers
@carriers_app.callback()
@friendly_errors
def carriers(
    ctx: typer.Context,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    available: Annotated[bool, typer.Option(
        "--available", help="List every carrier that can be configured (built-in or "
        "plug-in) with its capabilities and settings, instead of the connections.")] = False,
) -> None:
    """List the default account's connections, their numbers and webhook URLs to give carriers.

    The URLs hold each connection's secret token: give them to the carrier only. Other
    accounts' connections: `smsbridge connections list --account ID`.
    """
    import asyncio

    ctx.obj = config
    if ctx.invoked_subcommand is not None:
        return
    if available:
        from .catalog import print_available

        print_available(as_json)
        return
    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> tuple[list[dict[str, Any]], Settings]:
        async with open_gateway(settings) as gw:
            return gw.list_connections(gw.cli_scope), gw.settings

    rows, served = asyncio.run(main())
    unreachable_warning(served, served.server.base_url, [row["carrier"] for row in rows])
    print_warnings(settings)
    if as_json:
        print_json({"data": rows})
        return
    if not rows:
        out.print("no carrier connections configured")
    for row in rows:
        print_connection(row)


@carriers_app.command("describe")
@friendly_errors
def carriers_describe(
    key: Annotated[str, typer.Argument(help="A carrier key, as `carriers --available` lists.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a carrier's settings: each key's type, required or default, secret or not."""
    from .catalog import print_description

    print_description(key, as_json)


@carriers_app.command("rotate-token")
@friendly_errors
def rotate_token(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="The connection whose webhook URL is replaced.")], account: AccountOpt = None,
                 config: ConfigOpt = None) -> None:
    """Give a connection a new webhook token; update the carrier with the new URL."""
    import asyncio

    from ..core.errors import NotFound
    from ..gateway.admin import open_gateway

    settings = load(config or ctx.obj, secrets=False)

    async def main() -> dict[str, Any]:
        async with open_gateway(settings) as gw:
            scope = await scope_of(gw, account)
            try:
                return await gw.rotate_connection_token(scope, name)
            except NotFound:
                known = ", ".join(c["name"] for c in gw.list_connections(scope))
                raise InvalidInput("connection", f"no connection named {name!r} in this "
                                   f"account; known: {known or 'none'}") from None

    row = asyncio.run(main())
    out.print(f"new inbound URL for {name}: {row['inbound_url']}", highlight=False,
              soft_wrap=True, markup=False)
    err.print("Give the carrier the new URL. Running gateways stop accepting the old one "
              "within seconds.")


# ---------------------------------------------------------------- keys
@keys_app.command("create")
@friendly_errors
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for (unique among live keys).")],
    account: Annotated[str | None, typer.Option(
        "--account", metavar="ID", show_default=False,
        help="The account the key acts in (default: the default account).")] = None,
    admin: Annotated[bool, typer.Option(
        "--admin", help="An admin key: it also manages accounts (default account only).")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key of an account and print it once.

    Example: smsbridge keys create --name acme-pbx --account acc_0123456789abcdef
    """
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> tuple[ApiKeyRecord, str]:
        async with open_gateway(settings) as gw:
            return await gw.create_api_key(name, account=account.strip() if account else None,
                                           admin=admin)

    record, key = asyncio.run(main())
    if as_json:
        print_json({**record.to_dict(), "key": key})
        return
    kind = "admin key" if record.admin else "key"
    err.print(f"created {kind} {record.id} ({record.name}) of account {record.account_id}; "
              "it is shown only now:", highlight=False, markup=False, soft_wrap=True)
    out.print(key, highlight=False, soft_wrap=True)


@keys_app.command("list")
@friendly_errors
def keys_list(
    account: Annotated[str | None, typer.Option(
        "--account", metavar="ID", show_default=False,
        help="Only this account's keys (default: every account's).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List API keys with their account (never the keys themselves)."""
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> list[ApiKeyRecord]:
        async with open_gateway(settings) as gw:
            account_id = None if account is None else (await scope_of(gw, account)).account_id
            return await gw.list_api_keys(account_id)

    records = asyncio.run(main())
    if as_json:
        print_json({"data": [r.to_dict() for r in records]})
        return
    from rich.table import Table

    table = Table(title=None if records else "no API keys")
    for col in ("id", "account", "name", "admin", "prefix", "created", "state"):
        # Ids are copied from here: folded on a narrow terminal, never cut short.
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(r.id, r.account_id, r.name, "admin" if r.admin else "", r.prefix + "…",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
                      "revoked" if r.revoked_at else "active")
    out.print(table)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id, or its name when only one live "
                                       "key has it.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke one API key by id or by name."""
    import asyncio

    from ..gateway.admin import open_gateway

    settings = load(config, secrets=False)

    async def main() -> ApiKeyRecord:
        async with open_gateway(settings) as gw:
            return await gw.revoke_api_key(key)

    record = asyncio.run(main())
    out.print(f"revoked key {record.id} ({record.name})", highlight=False)


# ---------------------------------------------------------------- sandbox
@sandbox_app.command("receive")
@friendly_errors
def sandbox_receive(
    to: Annotated[str, typer.Option("--to", help="A sandbox number of yours.")],
    from_: Annotated[str, typer.Option("--from", help="Who the message is from.")],
    text: Annotated[str, typer.Option("--text", "-t", help="The message text.")] = "",
    media: Annotated[list[str] | None, typer.Option("--media", "-m", help="Media URL.")] = None,
    connection: Annotated[str | None, typer.Option(help="Sandbox connection name.")] = None,
    server: Annotated[str | None, typer.Option(help="Gateway base URL (default: where the "
                                               "running `smsbridge serve` listens).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Deliver an inbound message through the sandbox carrier's webhook of a running gateway."""
    import asyncio
    import uuid

    import aiohttp

    from ..core.phone import to_e164
    from ..core.scope import Scope
    from ..gateway.admin import open_runtime, served_url

    settings = load(config, secrets=False)
    region = settings.server.default_region
    to_e = to_e164(to, region, field="to")
    from_e = to_e164(from_, region, field="from")
    payload = {"id": f"sbx-in-{uuid.uuid4().hex[:12]}", "from": from_e, "to": to_e,
               "text": text, "media": [{"url": u} for u in (media or [])]}

    async def sandbox_url() -> tuple[str, str]:
        """The gateway's base URL and the inbound URL of the sandbox connection (of any
        account) that owns --to."""
        async with open_runtime(settings) as runtime:
            gw = runtime.gateway
            assert gw is not None
            for record in await gw.list_accounts(gw.cli_scope):
                for row in gw.list_connections(Scope(record.id, admin=True)):
                    if row["carrier"] != "sandbox" or to_e not in row["numbers"] or (
                            connection is not None and row["name"] != connection):
                        continue
                    # A token this command just made is one no running gateway has served.
                    if row["name"] in runtime.new_tokens or not row["inbound_url"]:
                        raise SmsBridgeError(f"connection {row['name']!r} has no webhook URL "
                                             "yet; start the gateway once with "
                                             "`smsbridge serve`")
                    token = row["inbound_url"].rsplit("/", 2)[-2]
                    # Played from this machine: straight to the gateway, not its public URL.
                    base = (server or served_url(gw.settings)).rstrip("/")
                    return base, f"{base}/v1/carriers/{row['name']}/{token}/inbound"
        raise InvalidInput("to", f"{to_e} is not a number of a sandbox connection")

    async def main() -> tuple[int, str]:
        base, url = await sandbox_url()
        async with aiohttp.ClientSession() as http:
            try:
                async with http.post(url, json=payload) as resp:
                    return resp.status, await resp.text()
            except aiohttp.ClientConnectionError:
                raise SmsBridgeError(f"no gateway answers at {base}; start it with "
                                     "`smsbridge serve` (or pass --server)") from None

    status, body = asyncio.run(main())
    if status >= 300:
        fail(f"the gateway answered {status}: {body}", 1)
    out.print(f"delivered {payload['id']} {from_e} -> {to_e} through the sandbox; "
              "see it with `smsbridge messages`", highlight=False)


# ---------------------------------------------------------------- config
@config_app.command("check")
@friendly_errors
def config_check(config: ConfigOpt = None) -> None:
    """Validate the config, secrets included; on error name the bad key and why (exit 2)."""
    from ..core.redact import redact_url

    settings = load(config, secrets=True)
    srv = settings.server
    out.print(f"config OK: {settings.source or '(embedded default: no config file)'}",
              highlight=False, soft_wrap=True)
    out.print(f"  listen {srv.listen}, public URL {srv.public_url or '(none)'}, "
              f"data {settings.data_location}", highlight=False, soft_wrap=True)
    for conn in settings.connections.values():
        out.print(f"  connection {conn.name}: {conn.carrier}, numbers "
                  f"{', '.join(conn.numbers) or '-'}", highlight=False)
    for hook in settings.webhooks:
        out.print(f"  webhook {redact_url(hook.url)}: {', '.join(hook.events)}", highlight=False)
    unreachable_warning(settings, srv.base_url)
    print_warnings(settings)


def run() -> None:
    """Entry point of the ``smsbridge`` script."""
    app()


if __name__ == "__main__":
    run()
