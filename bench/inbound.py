"""Inbound benchmark: signed Twilio webhooks into ``smsbridge serve``, against a bare Starlette 200.

    .venv/bin/python bench/inbound.py [--duration 10] [--connections 50] [--python-loadgen]

Each webhook is a real-shaped Twilio form (~500 bytes) with its own MessageSid and therefore its
own X-Twilio-Signature, computed here over the URL the gateway reconstructs
(http://127.0.0.1:PORT + path; the config sets no public_url). The gateway is SIGKILLed right
after the load, then the SQLite messages table is counted: every 200 must be a stored row.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from common import (
    AUTH_TOKEN,
    OUR_NUMBER,
    THEIR_NUMBER,
    LoadResult,
    LoadSpec,
    fmt,
    free_port,
    have_wrk,
    inbound_path,
    log,
    machine_line,
    print_table,
    run_load,
    servers,
    start_bare,
    start_gateway,
    write_config,
    write_requests,
)

from smsbridge.testing.fake_twilio import FakeTwilio, twilio_signature

TEXT = ("Hi, this is Sam from the dental office confirming your appointment on Tuesday at "
        "3:30 pm. Reply YES to confirm or call us to reschedule. Thanks!")
SID_FIELDS = ("SmsMessageSid", "SmsSid", "MessageSid")
MAX_POOL = 400_000


def signed_webhooks(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` (signature, form body) pairs, each with its own MessageSid."""
    template = FakeTwilio().inbound_params(from_=THEIR_NUMBER, to=OUR_NUMBER, body=TEXT)
    prefix = secrets.token_hex(4)
    rows = []
    for index in range(count):
        sid = f"SM{prefix}{index:024x}"
        params = [(k, sid if k in SID_FIELDS else v) for k, v in template]
        rows.append((twilio_signature(AUTH_TOKEN, url, params), urlencode(params)))
    return rows


def load_spec(port: int, path: str, file: Path) -> LoadSpec:
    """POSTs of the webhooks in ``file`` to ``path``; 200 is the accepted answer."""
    return LoadSpec(port=port, path=path, requests_file=file, expect_status=200,
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "User-Agent": "TwilioProxy/1.1"},
                    varying_header="X-Twilio-Signature")


def pool_size(rate: float, seconds: float) -> int:
    """Enough unique webhooks for ``seconds`` at 1.5x ``rate``, within bounds."""
    return int(min(MAX_POOL, max(2_000, rate * seconds * 1.5)))


def row(name: str, r: LoadResult) -> list[str]:
    """A table row for one measured run."""
    return [name, fmt(r.rate), str(r.non_ok + r.socket_errors), fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2), fmt(r.cpu_us_per_request),
            fmt(r.loadgen_cpu_us_per_request)]


def count_inbound(database: Path) -> int:
    """Rows of inbound messages in the gateway's SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM messages WHERE direction = 'inbound'")
                   .fetchone()[0])


def main() -> int:
    """Run both servers in turn, print the table and the durability check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of measured load per server (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each (default 2)")
    parser.add_argument("--connections", type=int, default=50, help="open connections")
    parser.add_argument("--python-loadgen", action="store_true",
                        help="use the aiohttp load generator even when wrk is installed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    duration = max(1.0, min(args.duration, 300.0))
    warmup = max(1.0, min(args.warmup, 30.0))
    force_python = args.python_loadgen or not have_wrk()

    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-bench-inbound-"))
    database = workdir / "smsbridge.db"
    gw_port, bare_port = free_port(), free_port()
    config = write_config(workdir, "gateway", gw_port, database)
    log(f"working in {workdir}")
    try:
        path = inbound_path(config)
        load = {"duration": duration, "connections": args.connections,
                "force_python": force_python}
        with servers() as started:
            log("bare Starlette endpoint")
            bare = start_bare(workdir, bare_port)
            started.append(bare)
            bare_file = workdir / "bare_requests.txt"
            write_requests(bare_file, signed_webhooks(f"http://127.0.0.1:{bare_port}{path}",
                                                      5_000))
            spec = load_spec(bare_port, path, bare_file)
            run_load(spec, workdir, **{**load, "duration": warmup}, cycle=True, server=bare)
            bare_result = run_load(spec, workdir, **load, cycle=True, server=bare)
            bare.stop()

            log("smsbridge serve")
            gateway = start_gateway(workdir, config, gw_port)
            started.append(gateway)
            url = f"http://127.0.0.1:{gw_port}{path}"
            # Unique webhooks for the warm-up (sized by the ceiling), then for the measured run
            # (sized by the warm-up's rate, so wrk does not load far more than it can send).
            warm_file, run_file = workdir / "warm_requests.txt", workdir / "gw_requests.txt"
            write_requests(warm_file, signed_webhooks(url, pool_size(bare_result.rate, warmup)))
            warm = run_load(load_spec(gw_port, path, warm_file), workdir,
                            **{**load, "duration": warmup}, server=gateway)
            write_requests(run_file, signed_webhooks(url, pool_size(2 * warm.rate, duration)))
            log("load")
            gw = run_load(load_spec(gw_port, path, run_file), workdir, **load, server=gateway)
            # No graceful stop: a 200 must mean "on disk" even if the process dies right after.
            time.sleep(0.2)
            gateway.kill()
        rows = count_inbound(database)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nsmsbridge inbound webhooks ({machine_line()}; load: {gw.tool}, "
          f"{args.connections} connections, {duration:g} s each)\n")
    print_table(["server", "accepted req/s", "non-2xx+errors", "p50 ms", "p99 ms",
                 "server CPU µs/req",
                 "loadgen CPU µs/req"],
                [row("bare Starlette on uvicorn (ceiling)", bare_result),
                 row("smsbridge serve: Twilio webhook -> SQLite", gw)])
    ratio = gw.rate / bare_result.rate if bare_result.rate else float("nan")
    print(f"\ngateway / ceiling: {ratio:.2f}")
    if gw.non_ok:
        print(f"gateway answered {gw.non_ok} non-200 (first: HTTP {gw.first_bad_status})")
    ok_total = warm.ok + gw.ok
    issued_total = warm.issued + gw.issued
    unanswered = issued_total - ok_total - warm.non_ok - gw.non_ok
    wrapped = warm.wrapped or gw.wrapped
    durable = ok_total <= rows <= ok_total + max(0, unanswered)
    print(f"durability (after SIGKILL): {rows} rows for {ok_total} 200s "
          f"({unanswered} requests unanswered when the load stopped, may or may not be stored)"
          f" -> {'OK' if durable and not wrapped else 'MISMATCH'}"
          f"{' (request pool ran out; counts approximate)' if wrapped else ''}")
    print(f"\nSummary: inbound {fmt(gw.rate)} webhooks/s accepted and durable "
          f"(p50 {gw.p50_ms:.1f} ms, p99 {gw.p99_ms:.1f} ms) vs {fmt(bare_result.rate)} req/s "
          f"for a bare Starlette 200 = {ratio:.2f}x; {rows}/{ok_total} acknowledged rows on disk "
          f"after SIGKILL [{gw.tool.split()[0]}]")
    return 0 if durable else 1


if __name__ == "__main__":
    sys.exit(main())
