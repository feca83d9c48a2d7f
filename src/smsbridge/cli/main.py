"""The ``smsbridge`` command: serve, worker, send, messages, carriers, keys, sandbox, config."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import mimetypes
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..core.errors import ConfigError, InvalidInput, SmsBridgeError
from ..core.messages import Direction, Message, MessageStatus
from ..gateway.config import ENV_CONFIG, Settings, load_settings

app = typer.Typer(
    name="smsbridge",
    help="Self-hosted SMS/MMS gateway: one API and one webhook format for every carrier.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
carriers_app = typer.Typer(help="Carrier connections and their webhook URLs.",
                           invoke_without_command=True)
keys_app = typer.Typer(help="API keys (stored hashed; a key is shown once).", no_args_is_help=True)
sandbox_app = typer.Typer(help="Play traffic through the built-in sandbox carrier.",
                          no_args_is_help=True)
config_app = typer.Typer(help="Check the configuration file.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")
app.add_typer(keys_app, name="keys")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar=ENV_CONFIG, help="TOML config file "
                 f"(or ${ENV_CONFIG}); without one: SQLite in ./smsbridge-data and the sandbox."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn smsbridge errors into one clear line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err.print(f"[red]config error[/red] {exc.key}: {exc.reason}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except InvalidInput as exc:
            err.print(f"[red]invalid[/red] {exc.field}: {exc.reason}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except SmsBridgeError as exc:
            err.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # Alembic narrates every plugin at INFO; only its warnings matter to a user.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- serve / worker / migrate
@app.command()
@friendly_errors
def serve(
    config: ConfigOpt = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT, overrides server.listen")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve HTTP only; run "
                                            "`smsbridge worker` elsewhere to send.")] = False,
) -> None:
    """Run the gateway: the HTTP API, carrier webhooks and (unless --no-worker) the workers."""
    import uvicorn

    from ..api.app import create_app
    from ..gateway.admin import provision
    from ..gateway.runtime import Runtime

    settings = _settings(config)
    if listen:
        settings.config.server = settings.server.model_copy(update={"listen": listen})
        type(settings.server).model_validate(settings.server.model_dump())
    _setup_logging(settings.server.log_level)
    tokens, first_key = asyncio.run(provision(settings))
    srv = settings.server
    err.print(f"[bold]smsbridge[/bold] on http://{srv.listen}  store: "
              f"{_redact_db(srv.database)}  config: {settings.source or '(embedded default)'}",
              highlight=False)
    if first_key:
        err.print("\n[bold yellow]API key (shown once; it is stored hashed):[/bold yellow]")
        out.print(first_key, highlight=False, soft_wrap=True)
        err.print("Use it as: Authorization: Bearer <key>\n")
    for name, conn in settings.connections.items():
        url = f"{srv.base_url}/v1/carriers/{name}/{tokens[name]}/inbound"
        err.print(f"  {name} ({conn.carrier}) {', '.join(conn.numbers)}  inbound: {url}",
                  highlight=False, soft_wrap=True)
    runtime = Runtime(settings, run_workers=not no_worker)
    uvicorn.run(create_app(runtime), host=srv.host, port=srv.port, log_level="warning",
                access_log=False, server_header=False)


@app.command()
@friendly_errors
def worker(config: ConfigOpt = None) -> None:
    """Run only the workers (outbox and app webhooks), beside one or more `serve --no-worker`."""
    from ..gateway.runtime import Runtime

    settings = _settings(config)
    _setup_logging(settings.server.log_level)

    async def main() -> None:
        runtime = Runtime(settings)
        await runtime.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("smsbridge").info("worker running (%s)", runtime.outbox and
                                            runtime.outbox.owner)
        await stop.wait()
        await runtime.stop()

    _run_fast(main())


@app.command()
@friendly_errors
def migrate(config: ConfigOpt = None) -> None:
    """Apply the database migrations (serve and worker also do this on start)."""
    from ..store.migrate import current_revision, head_revision
    from ..store.sql import SqlStore

    settings = _settings(config)
    store = SqlStore(settings.server.database)
    before = current_revision(store.engine)
    store.migrate()
    after = current_revision(store.engine)
    store.engine.dispose()
    out.print(f"database at revision {after} (was {before or 'empty'}; newest {head_revision()})")


def _run_fast(coro: Any) -> None:
    """Run a long-lived coroutine on uvloop when it is installed (as `serve` does via uvicorn)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def _redact_db(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


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
    from ..gateway.admin import open_gateway
    from ..gateway.service import SendRequest

    settings = _settings(config)
    items = [_media_input(m, settings.server.max_media_bytes) for m in (media or [])]

    async def main() -> tuple[Message, bool]:
        async with open_gateway(settings) as gw:
            return await gw.send(SendRequest(from_, to, text, items, connection), idempotency_key)

    message, created = asyncio.run(main())
    if as_json:
        _print_json(message.to_dict())
        return
    verb = "queued" if created else "already queued (same idempotency key)"
    out.print(f"{verb} [bold]{message.id}[/bold] {message.from_number} -> {message.to_number} "
              f"via {message.connection} ({message.segments} segment(s), {message.encoding}); "
              f"status: {message.status.value}", highlight=False)


def _media_input(value: str, limit: int) -> Any:
    import base64

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
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List messages, newest first."""
    from ..core.phone import to_e164
    from ..store.base import MessageFilter
    from ..store.sql import SqlStore

    settings = _settings(config)
    if number:
        number = to_e164(number, settings.server.default_region, field="number")
    filt = MessageFilter(number, direction, status)

    async def main() -> None:
        store = SqlStore(settings.server.database)
        await asyncio.to_thread(store.migrate)
        try:
            page = await store.list_messages(filt, limit, None)
            rows = list(reversed(page.messages))
            if as_json and not follow:
                _print_json({"data": [m.to_dict() for m in page.messages],
                             "next_cursor": page.next_cursor})
                return
            if not follow:
                out.print(_message_table(page.messages))
                return
            seen: dict[str, str] = {}
            for m in rows:
                _print_follow(m, as_json)
                seen[m.id] = f"{m.status}{m.updated_at}"
            while True:
                await asyncio.sleep(1.0)
                latest = await store.list_messages(filt, 100, None)
                for m in reversed(latest.messages):
                    stamp = f"{m.status}{m.updated_at}"
                    if seen.get(m.id) != stamp:
                        seen[m.id] = stamp
                        _print_follow(m, as_json)
        finally:
            await store.close()

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
def carriers(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List carrier connections, their numbers and the webhook URLs to give each carrier."""
    ctx.obj = config
    if ctx.invoked_subcommand is not None:
        return
    from ..gateway.admin import open_gateway
    from ..gateway.service import describe_connection

    settings = _settings(config)

    async def main() -> list[dict[str, Any]]:
        async with open_gateway(settings) as gw:
            return [describe_connection(gw, c) for c in settings.connections.values()]

    rows = asyncio.run(main())
    if as_json:
        _print_json({"data": rows})
        return
    if not rows:
        out.print("no carrier connections configured")
    for row in rows:
        out.print(f"[bold]{row['name']}[/bold] ({row['carrier']})  numbers: "
                  f"{', '.join(row['numbers']) or '-'}", highlight=False)
        out.print(f"  inbound: {row['inbound_url']}", highlight=False, soft_wrap=True)
        if row["status_url"]:
            out.print(f"  status:  {row['status_url']}", highlight=False, soft_wrap=True)
        if row["setup"]:
            for line in str(row["setup"]).splitlines():
                out.print(f"  {line}", highlight=False, soft_wrap=True)


@carriers_app.command("rotate-token")
@friendly_errors
def rotate_token(ctx: typer.Context, name: Annotated[str, typer.Argument(
        help="The connection whose webhook URL is replaced.")], config: ConfigOpt = None
                 ) -> None:
    """Give a connection a new webhook token; update the carrier with the new URL."""
    from ..gateway.admin import open_gateway

    settings = _settings(config or ctx.obj)

    async def main() -> str:
        async with open_gateway(settings) as gw:
            await gw.rotate_token(name)
            return gw.inbound_url(name)

    url = asyncio.run(main())
    out.print(f"new inbound URL for {name}: {url}", highlight=False, soft_wrap=True)
    err.print("Give the carrier the new URL. Running gateways stop accepting the old one "
              "within 5 seconds.")


# ---------------------------------------------------------------- keys
@keys_app.command("create")
@friendly_errors
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it once."""
    from ..gateway.admin import open_gateway

    settings = _settings(config)

    async def main() -> tuple[Any, str]:
        async with open_gateway(settings) as gw:
            return await gw.create_api_key(name)

    record, key = asyncio.run(main())
    if as_json:
        _print_json({"id": record.id, "name": record.name, "key": key})
        return
    err.print(f"created key {record.id} ({record.name}); it is shown only now:")
    out.print(key, highlight=False, soft_wrap=True)


@keys_app.command("list")
@friendly_errors
def keys_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List API keys (never the keys themselves)."""
    from ..store.sql import SqlStore

    settings = _settings(config)

    async def main() -> list[Any]:
        store = SqlStore(settings.server.database)
        await asyncio.to_thread(store.migrate)
        try:
            return await store.list_api_keys()
        finally:
            await store.close()

    records = asyncio.run(main())
    if as_json:
        _print_json({"data": [{"id": r.id, "name": r.name, "prefix": r.prefix,
                               "created_at": r.created_at, "revoked_at": r.revoked_at}
                              for r in records]})
        return
    table = Table()
    for col in ("id", "name", "prefix", "created", "state"):
        table.add_column(col)
    for r in records:
        table.add_row(r.id, r.name, r.prefix + "…",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
                      "revoked" if r.revoked_at else "active")
    out.print(table)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke an API key by id or name."""
    from ..store.sql import SqlStore

    settings = _settings(config)

    async def main() -> int:
        store = SqlStore(settings.server.database)
        await asyncio.to_thread(store.migrate)
        try:
            return await store.revoke_api_key(key)
        finally:
            await store.close()

    count = asyncio.run(main())
    if not count:
        err.print(f"no active key with id or name {key!r}")
        raise typer.Exit(1)
    out.print(f"revoked {count} key(s)")


# ---------------------------------------------------------------- sandbox
@sandbox_app.command("receive")
@friendly_errors
def sandbox_receive(
    to: Annotated[str, typer.Option("--to", help="A sandbox number of yours.")],
    from_: Annotated[str, typer.Option("--from", help="Who the message is from.")],
    text: Annotated[str, typer.Option("--text", "-t", help="The message text.")] = "",
    media: Annotated[list[str] | None, typer.Option("--media", "-m", help="Media URL.")] = None,
    connection: Annotated[str | None, typer.Option(help="Sandbox connection name.")] = None,
    server: Annotated[str | None, typer.Option(help="Gateway base URL (default: the "
                                               "listen address in the config).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Deliver an inbound message through the sandbox carrier's webhook of a running gateway."""
    import uuid

    import aiohttp

    from ..core.phone import to_e164
    from ..store.sql import SqlStore

    settings = _settings(config)
    region = settings.server.default_region
    to_e = to_e164(to, region, field="to")
    from_e = to_e164(from_, region, field="from")
    candidates = [c for c in settings.connections.values() if c.carrier == "sandbox"
                  and (connection is None or c.name == connection)]
    owner = next((c for c in candidates if to_e in c.numbers), None)
    if owner is None:
        raise InvalidInput("to", f"{to_e} is not a number of a sandbox connection")
    srv = settings.server
    host = "127.0.0.1" if srv.host in ("0.0.0.0", "::") else srv.host
    base = (server or f"http://{host}:{srv.port}").rstrip("/")
    payload = {"id": f"sbx-in-{uuid.uuid4().hex[:12]}", "from": from_e, "to": to_e,
               "text": text, "media": [{"url": u} for u in (media or [])]}

    async def main() -> tuple[int, str]:
        store = SqlStore(srv.database)
        await asyncio.to_thread(store.migrate)
        try:
            # Read only: tokens are made by the gateway, never by a client of it.
            token = (await store.read_tokens()).get(owner.name)
        finally:
            await store.close()
        if not token:
            raise SmsBridgeError(f"connection {owner.name!r} has no webhook URL yet; start "
                                 "the gateway once with `smsbridge serve`")
        url = f"{base}/v1/carriers/{owner.name}/{token}/inbound"
        async with aiohttp.ClientSession() as http:
            try:
                async with http.post(url, json=payload) as resp:
                    return resp.status, await resp.text()
            except aiohttp.ClientConnectionError:
                raise SmsBridgeError(f"no gateway answers at {base}; start it with "
                                     "`smsbridge serve` (or pass --server)") from None

    status, body = asyncio.run(main())
    if status >= 300:
        err.print(f"[red]the gateway answered {status}[/red]: {body}", highlight=False)
        raise typer.Exit(1)
    out.print(f"delivered {payload['id']} {from_e} -> {to_e} through the sandbox; "
              "see it with `smsbridge messages`", highlight=False)


# ---------------------------------------------------------------- config
@config_app.command("check")
@friendly_errors
def config_check(config: ConfigOpt = None) -> None:
    """Validate the config; on error name the bad key and why (exit 2)."""
    settings = _settings(config)
    out.print(f"config OK: {settings.source or '(embedded default)'}", highlight=False)
    out.print(f"  listen {settings.server.listen}, public URL {settings.server.base_url}, "
              f"store {_redact_db(settings.server.database)}", highlight=False)
    for conn in settings.connections.values():
        out.print(f"  connection {conn.name}: {conn.carrier}, numbers "
                  f"{', '.join(conn.numbers) or '-'}", highlight=False)
    for hook in settings.webhooks:
        out.print(f"  webhook {hook.url}: {', '.join(hook.events)}", highlight=False)


def run() -> None:
    """Entry point of the ``smsbridge`` script."""
    app()


if __name__ == "__main__":
    run()
