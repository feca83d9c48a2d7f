"""Outbound benchmark: POST /v1/messages through the worker to a fake Twilio, against raw aiohttp.

    .venv/bin/python bench/outbound.py [--duration 10] [--connections 50] [--python-loadgen]

Measurements (every server is its own process; the worker-alone run reuses the intake file):

1. ceiling: a raw aiohttp client loop (separate process, ``--connections`` in flight) POSTing
   the gateway's send form straight to the fake's Messages.json;
2. intake alone: POST /v1/messages to ``smsbridge serve --no-worker`` (202s per second);
   then worker alone: ``smsbridge serve`` started on that backlog sends it for up to
   ``--duration`` seconds (rate between the first and the last message marked sent);
3. end to end: POST /v1/messages to ``smsbridge serve`` for half the duration while its worker
   ([worker] concurrency = 50) sends to the fake; sends/s = messages / (time from the first POST
   until the last one is marked sent in the database, i.e. the fake answered 201 for all).
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    THEIR_NUMBER,
    LoadResult,
    LoadSpec,
    fmt,
    free_port,
    have_wrk,
    log,
    machine_line,
    print_table,
    run_load,
    servers,
    smsbridge_json,
    start_fake_twilio,
    start_gateway,
    write_config,
    write_requests,
)

TEXT = ("Your verification code is 482913. It expires in 10 minutes. If you did not ask for "
        "it, ignore this message.")
DRAIN_TIMEOUT = 120.0


def fake_send_spec(fake_port: int, gateway_port: int, file: Path) -> LoadSpec:
    """The Messages API request the gateway's Twilio provider makes, sent by hand."""
    form = [("To", THEIR_NUMBER), ("From", OUR_NUMBER), ("Body", TEXT),
            ("StatusCallback", f"http://127.0.0.1:{gateway_port}/v1/carriers/tw/token/status")]
    write_requests(file, [("", urlencode(form))])
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    return LoadSpec(port=fake_port, path=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json",
                             "Content-Type": "application/x-www-form-urlencoded"},
                    varying_header=None, requests_file=file, expect_status=201)


def send_api_spec(port: int, api_key: str, file: Path) -> LoadSpec:
    """POST /v1/messages with a bearer API key; 202 is the accepted answer."""
    write_requests(file, [("", json.dumps({"from": OUR_NUMBER, "to": THEIR_NUMBER,
                                           "text": TEXT}))])
    return LoadSpec(port=port, path="/v1/messages", requests_file=file, expect_status=202,
                    headers={"Authorization": f"Bearer {api_key}",
                             "Content-Type": "application/json"},
                    varying_header=None)


def status_counts(database: Path) -> dict[str, int]:
    """Outbound messages per status."""
    with sqlite3.connect(str(database), timeout=10) as db:
        rows = db.execute("SELECT status, count(*) FROM messages WHERE direction = 'outbound' "
                          "GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def last_sent_at(database: Path) -> float:
    """Epoch time at which the last outbound message was marked sent."""
    with sqlite3.connect(str(database), timeout=10) as db:
        value = db.execute("SELECT max(updated_at) FROM messages WHERE direction = 'outbound' "
                           "AND status = 'sent'").fetchone()[0]
    return float(value or 0.0)


def wait_drained(database: Path, timeout: float) -> dict[str, int]:
    """Poll until no outbound message is queued or sending (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = status_counts(database)
        pending = counts.get("queued", 0) + counts.get("sending", 0)
        if pending == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


def drain_figures(database: Path) -> tuple[int, float]:
    """Messages sent and the rate between the first and the last one marked sent."""
    with sqlite3.connect(str(database), timeout=10) as db:
        n, first, last = db.execute(
            "SELECT count(*), min(updated_at), max(updated_at) FROM messages "
            "WHERE direction = 'outbound' AND status = 'sent'").fetchone()
    if not n or n < 2 or last <= first:
        return int(n or 0), 0.0
    return int(n), (n - 1) / (last - first)


def row(name: str, r: LoadResult, unit_rate: float | None = None) -> list[str]:
    """A table row for a load-generator run."""
    rate = r.rate if unit_rate is None else unit_rate
    return [name, fmt(rate), str(r.non_ok + r.socket_errors), fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2), fmt(r.cpu_us_per_request),
            fmt(r.loadgen_cpu_us_per_request)]


def main() -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per measurement; end to end POSTs for half (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="requests in flight")
    parser.add_argument("--python-loadgen", action="store_true",
                        help="use the aiohttp load generator even when wrk is installed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    duration = max(2.0, min(args.duration, 300.0))
    force_python = args.python_loadgen or not have_wrk()
    conns = args.connections

    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-bench-outbound-"))
    log(f"working in {workdir}")
    fake_port, intake_port, e2e_port = free_port(), free_port(), free_port()
    intake_db, e2e_db = workdir / "intake.db", workdir / "e2e.db"
    intake_cfg = write_config(workdir, "intake", intake_port, intake_db, fake_port=fake_port,
                              concurrency=50)
    e2e_cfg = write_config(workdir, "e2e", e2e_port, e2e_db, fake_port=fake_port,
                           concurrency=50)
    wrk_fake: LoadResult | None = None
    try:
        intake_key = smsbridge_json(intake_cfg, "keys", "create", "--name", "bench")["key"]
        e2e_key = smsbridge_json(e2e_cfg, "keys", "create", "--name", "bench")["key"]
        with servers() as started:
            fake = start_fake_twilio(workdir, fake_port)
            started.append(fake)
            spec = fake_send_spec(fake_port, e2e_port, workdir / "fake_form.txt")
            log("ceiling: raw aiohttp -> fake Twilio")
            run_load(spec, workdir, duration=1, connections=conns, cycle=True, server=fake,
                     force_python=True)
            ceiling = run_load(spec, workdir, duration=duration, connections=conns, cycle=True,
                               server=fake, force_python=True)
            if not force_python:
                log("wrk -> fake Twilio (how fast the fake itself is)")
                wrk_fake = run_load(spec, workdir, duration=max(2.0, duration / 2),
                                    connections=conns, cycle=True, server=fake)

            log("intake alone: smsbridge serve --no-worker")
            intake_gw = start_gateway(workdir, intake_cfg, intake_port, worker=False,
                                      name="gateway-intake")
            started.append(intake_gw)
            spec = send_api_spec(intake_port, intake_key, workdir / "send_intake.txt")
            load = {"connections": conns, "cycle": True, "server": intake_gw,
                    "force_python": force_python}
            intake_warm = run_load(spec, workdir, duration=2, **load)
            intake = run_load(spec, workdir, duration=duration, **load)
            intake_gw.stop()
            intake_rows = sum(status_counts(intake_db).values())

            log("worker alone: smsbridge serve drains the intake run's backlog")
            drain_gw = start_gateway(workdir, intake_cfg, intake_port, name="gateway-drain")
            started.append(drain_gw)
            drain_cpu0 = drain_gw.cpu_seconds()
            wait_drained(intake_db, duration)
            drain_cpu = drain_gw.cpu_seconds() - drain_cpu0
            drain_gw.stop()
            drained, drain_rate = drain_figures(intake_db)

            log("end to end: smsbridge serve with its worker -> fake Twilio")
            e2e_gw = start_gateway(workdir, e2e_cfg, e2e_port, name="gateway-e2e")
            started.append(e2e_gw)
            spec = send_api_spec(e2e_port, e2e_key, workdir / "send_e2e.txt")
            fake_cpu0, gw_cpu0 = fake.cpu_seconds(), e2e_gw.cpu_seconds()
            t0 = time.time()
            posted = run_load(spec, workdir, duration=max(1.0, duration / 2), connections=conns,
                              cycle=True, server=e2e_gw, force_python=force_python)
            counts = wait_drained(e2e_db, DRAIN_TIMEOUT)
            t_last = last_sent_at(e2e_db)
            fake_cpu, gw_cpu = fake.cpu_seconds() - fake_cpu0, e2e_gw.cpu_seconds() - gw_cpu0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    total = sum(counts.values())
    sent = counts.get("sent", 0)
    elapsed = t_last - t0 if t_last else float("nan")
    e2e_rate = sent / elapsed if sent and elapsed > 0 else 0.0
    pending = counts.get("queued", 0) + counts.get("sending", 0)

    print(f"\nsmsbridge outbound ({machine_line()}; {conns} in flight, {duration:g} s runs; "
          f"API load: {posted.tool})\n")
    table = [row("ceiling: raw aiohttp loop -> fake Twilio", ceiling)]
    if wrk_fake is not None:
        table.append(row("(wrk -> fake Twilio: the fake's own limit)", wrk_fake))
    table += [
        row("intake alone: POST /v1/messages (serve --no-worker)", intake),
        [f"worker alone: drains a backlog, {drained} messages", fmt(drain_rate), "-", "-", "-",
         fmt(drain_cpu / drained * 1e6 if drained else float("nan")), "-"],
        row("intake while the worker sends (end-to-end run)", posted),
        [f"end to end: POST -> worker -> fake, {sent} messages", fmt(e2e_rate), "-", "-", "-",
         fmt(gw_cpu / sent * 1e6 if sent else float("nan")), "-"],
    ]
    print_table(["what", "per second", "non-2xx+errors", "p50 ms", "p99 ms",
                 "server CPU µs/msg",
                 "client CPU µs/msg"], table)
    ratio = e2e_rate / ceiling.rate if ceiling.rate else float("nan")
    print(f"\nend-to-end sends/s / raw aiohttp ceiling: {ratio:.2f}")
    print(f"end to end: {total} messages accepted in {posted.seconds:.1f} s, last one sent "
          f"{elapsed:.1f} s after the first POST; statuses {counts}; the fake used "
          f"{fake_cpu / max(sent, 1) * 1e6:.0f} µs CPU per send")
    accepted = intake_warm.ok + intake.ok
    unanswered = (intake_warm.issued + intake.issued - accepted - intake_warm.non_ok
                  - intake.non_ok)
    print(f"intake alone: {intake_rows} rows stored for {accepted} 202s "
          f"({unanswered} unanswered when the load stopped, may or may not be stored)")
    if pending:
        print(f"WARNING: {pending} messages still queued/sending after {DRAIN_TIMEOUT:g} s")
    print(f"\nSummary: outbound {fmt(e2e_rate)} sends/s end to end (POST /v1/messages -> "
          f"worker -> fake Twilio) vs {fmt(ceiling.rate)} sends/s for a raw aiohttp loop = "
          f"{ratio:.2f}x; intake alone {fmt(intake.rate)} msg/s (p99 {intake.p99_ms:.0f} ms) "
          f"[{posted.tool.split()[0]}, {conns} in flight]")
    return 0 if sent and not pending else 1


if __name__ == "__main__":
    sys.exit(main())
