"""The long-running commands (serve, worker) and migrate: the only ones that migrate."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from .common import err, fail, load, out, print_warnings, unreachable_warning


def setup_logging(level: str) -> None:
    """Log lines on stderr at the configured level."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # Alembic narrates every plugin at INFO; only its warnings matter to a user.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def bind_listen_socket(listen: str) -> socket.socket:
    """A listening socket on HOST:PORT, or exit 2 with one line saying what to do."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        fail(f"cannot listen on {listen}: cannot resolve {host!r} ({exc.strerror}); fix "
             "--listen or server.listen")
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restart may bind while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"cannot listen on {listen}: the address is already in use (is another "
                 "smsbridge serve running?); stop that process, or choose a free port with "
                 "--listen HOST:PORT or server.listen")
        if exc.errno == errno.EACCES:
            fail(f"cannot listen on {listen}: permission denied (ports below 1024 need "
                 "privileges); choose a port above 1024 with --listen or server.listen")
        if exc.errno == errno.EADDRNOTAVAIL:
            fail(f"cannot listen on {listen}: this machine has no address {host}; use "
                 "127.0.0.1, 0.0.0.0 or one of its own addresses")
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


def serve(config: Path | None, listen: str | None, no_worker: bool) -> None:
    """Check the address, migrate, provision, print the start lines, then serve until stopped."""
    from ..gateway.config import ServerConfig

    settings = load(config, secrets=True)
    if listen:
        try:
            server = ServerConfig.model_validate({**settings.server.model_dump(),
                                                  "listen": listen})
        except ValueError:
            fail(f"invalid --listen: {listen!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
        settings.config.server = server
    # Before anything is written or printed: a busy port must not cost a new API key.
    sock = bind_listen_socket(settings.server.listen)
    host = settings.server.listen.rpartition(":")[0]
    listening_on = f"{host}:{sock.getsockname()[1]}"
    setup_logging(settings.server.log_level)

    import uvicorn

    from .. import __version__
    from ..api.app import create_app
    from ..api.server import uvicorn_options
    from ..gateway.admin import prepare_serving, store_for, url_of
    from ..gateway.runtime import Runtime

    # A store failure here ends the command with one line of its own; the store's warning
    # would say the same thing again.
    store_log = logging.getLogger("smsbridge.store")
    store_log.setLevel(logging.ERROR)
    try:
        done = asyncio.run(prepare_serving(settings, listening_on=listening_on))
    finally:
        store_log.setLevel(logging.NOTSET)
    srv = settings.server
    err.print(f"[bold]smsbridge {__version__}[/bold] listening on {url_of(listening_on)}",
              highlight=False)
    err.print(f"  data:   {settings.data_location}", highlight=False, soft_wrap=True)
    err.print(f"  config: {settings.source or '(embedded default: no config file)'}",
              highlight=False, soft_wrap=True)
    base = srv.public_url or url_of(listening_on)
    # The token in a webhook URL is all that protects some carriers' webhooks (VoIP.ms):
    # show the URLs when they were just made and a person is watching, not in every log.
    show_urls = bool(done.new_tokens) and err.is_terminal
    for name, conn in settings.connections.items():
        err.print(f"  connection {name} ({conn.carrier}): {', '.join(conn.numbers) or '-'}",
                  highlight=False, soft_wrap=True)
        if show_urls:
            err.print(f"    inbound: {base}/v1/carriers/{name}/{done.tokens[name]}/inbound",
                      highlight=False, soft_wrap=True)
    for name, carrier, numbers, account in done.stored:
        err.print(f"  connection {name} ({carrier}, added by API to {account}): "
                  f"{', '.join(numbers) or '-'}", highlight=False, soft_wrap=True)
    if settings.connections and not show_urls:
        err.print("  webhook URLs: run `smsbridge carriers` to show them", highlight=False)
    unreachable_warning(settings, base)
    if not done.stored:  # the warning is of a gateway with no connection at all
        print_warnings(settings)
    if done.first_key:
        err.print("\n[bold yellow]New API key, shown only now (only its hash is stored):"
                  "[/bold yellow]", highlight=False)
        out.print(f"\n    {done.first_key}\n", highlight=False, soft_wrap=True)
        err.print("Use it as: Authorization: Bearer <key>.  More keys: smsbridge keys create "
                  "--name NAME", highlight=False, soft_wrap=True)
    runtime = Runtime(settings, store_for(settings), run_workers=not no_worker)
    uvicorn_config = uvicorn.Config(create_app(runtime), log_level="warning",
                                    access_log=False, server_header=False,
                                    **uvicorn_options())
    uvicorn.Server(uvicorn_config).run(sockets=[sock])


def worker(config: Path | None) -> None:
    """Run the outbox and app-webhook workers until SIGINT or SIGTERM."""
    from ..gateway.admin import store_for
    from ..gateway.runtime import Runtime

    settings = load(config, secrets=True)
    setup_logging(settings.server.log_level)
    print_warnings(settings)

    async def main() -> None:
        runtime = Runtime(settings, store_for(settings))
        await runtime.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("smsbridge").info("worker running (%s)", runtime.outbox and
                                            runtime.outbox.owner)
        await stop.wait()
        await runtime.stop()

    run_fast(main())


def migrate(config: Path | None) -> None:
    """Apply the migrations and say which revision the database is at."""
    from ..gateway.admin import migrate_database

    settings = load(config, secrets=False)
    before, after = asyncio.run(migrate_database(settings))
    out.print(f"database {settings.data_location} at revision {after} (was "
              f"{before or 'empty'})", highlight=False, soft_wrap=True)


def run_fast(coro: Any) -> None:
    """Run a long-lived coroutine on uvloop when it is installed (as `serve` does via uvicorn)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)
