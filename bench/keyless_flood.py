"""Keyless flood: an authenticated POST /v1/messages while clients without a key send 9.6 MB.

    .venv/bin/python bench/keyless_flood.py [--duration 10] [--flooders 4] [--body-mb 9.6]

One ``smsbridge serve --no-worker`` (SQLite, one Twilio connection whose API is a closed port
on 127.0.0.1: nothing is sent anywhere). One authenticated client POSTs a small message, one
request in flight, and records each latency:

1. ceiling: the authenticated client alone, for ``--duration`` seconds;
2. flood: the same client for ``--duration`` seconds while ``--flooders`` clients (one process,
   each its own connection) POST ``--body-mb`` MB JSON bodies without a key, over and over.

A gateway that reads and parses a body before it checks the key spends its event loop on the
flooders' bodies and the authenticated latency grows with them; one that refuses them from
their headers keeps it near the ceiling. Every loop is bounded in time and count; all traffic
goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    OUR_NUMBER,
    PYTHON,
    THEIR_NUMBER,
    fmt,
    free_port,
    log,
    machine_line,
    print_table,
    servers,
    smsbridge_json,
    start_gateway,
    write_config,
)

MAX_REQUESTS = 100_000  # per client and phase, beside the time bound
CHUNK = 256 * 1024


def flood_body(size: int) -> bytes:
    """A JSON body of ``size`` bytes made of many small objects: costly to parse."""
    item = b'{"url":"https://cdn.example.com/a.jpg","content_type":"image/jpeg"},'
    count = max(1, (size - 64) // len(item))
    return (b'{"from":"' + OUR_NUMBER.encode() + b'","to":"' + THEIR_NUMBER.encode()
            + b'","media":[' + item * count)[:-1] + b"]}"


async def _one_flood_request(port: int, body: bytes, key: str | None) -> tuple[int, int]:
    """POST ``body`` (with ``key``, if any); returns (HTTP status or 0 if cut off, bytes sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    try:
        writer.write(f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "\r\n".encode())
        for start in range(0, len(body), CHUNK):
            writer.write(body[start:start + CHUNK])
            await writer.drain()
            sent += min(CHUNK, len(body) - start)
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                break  # answered already: a client stops sending on an early answer
        line = await asyncio.wait_for(reader.readline(), 30)
        return (int(line.split()[1]) if line.startswith(b"HTTP/") else 0), sent
    except (ConnectionError, TimeoutError, IndexError, ValueError):
        return 0, sent
    finally:
        writer.close()


async def flood(port: int, flooders: int, size: int, duration: float, key: str | None
                ) -> dict[str, Any]:
    """``flooders`` clients POSTing ``size``-byte bodies (keyless unless ``key``)."""
    body = flood_body(size)
    deadline = time.monotonic() + duration
    statuses: dict[str, int] = {}
    bytes_sent = 0

    async def client() -> None:
        nonlocal bytes_sent
        for _ in range(MAX_REQUESTS):
            if time.monotonic() > deadline:
                return
            status, sent = await _one_flood_request(port, body, key)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            bytes_sent += sent

    await asyncio.gather(*(client() for _ in range(flooders)))
    return {"statuses": statuses, "bytes_sent": bytes_sent}


async def authenticated(port: int, key: str, duration: float) -> dict[str, Any]:
    """POST /v1/messages with ``key``, one at a time, for ``duration`` seconds."""
    import aiohttp

    body = json.dumps({"from": OUR_NUMBER, "to": THEIR_NUMBER, "text": "Porch motion at 02:14"})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    other = 0
    deadline = time.monotonic() + duration
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for _ in range(MAX_REQUESTS):
            if time.monotonic() > deadline:
                break
            began = time.perf_counter()
            async with http.post(f"http://127.0.0.1:{port}/v1/messages", data=body,
                                 headers=headers) as resp:
                await resp.read()
                ok = resp.status == 202
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                other += 1
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"ok": len(latencies), "other": other, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000 if latencies else float("nan")}


def main() -> None:
    """Run both phases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--flooders", type=int, default=4, help="keyless clients")
    parser.add_argument("--body-mb", type=float, default=9.6, help="each keyless body, in MB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("flood", help="(child process) run the keyless clients")
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--key", default=None, help="send this API key (the comparison row)")
    args = parser.parse_args()
    duration = max(2.0, min(args.duration, 120.0))
    flooders = max(1, min(args.flooders, 16))
    size = int(max(0.01, min(args.body_mb, 9.9)) * 1_000_000)
    if args.command == "flood":
        print("BENCH_JSON " + json.dumps(asyncio.run(flood(args.port, flooders, size,
                                                            duration, args.key))), flush=True)
        return

    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-bench-keyless-"))
    log(f"working in {workdir}")
    port = free_port()
    # The Twilio API is a closed local port: --no-worker sends nothing, and nothing could leave.
    config = write_config(workdir, "keyless", port, workdir / "keyless.db", fake_port=free_port())
    try:
        key = smsbridge_json(config, "keys", "create", "--name", "bench")["key"]
        with servers() as started:
            gateway = start_gateway(workdir, config, port, worker=False)
            started.append(gateway)
            asyncio.run(authenticated(port, key, 1.0))  # warm-up
            log(f"ceiling: the authenticated client alone for {duration:g} s")
            cpu0 = gateway.cpu_seconds()
            alone = asyncio.run(authenticated(port, key, duration))
            alone_cpu = gateway.cpu_seconds() - cpu0
            rows = []
            for flood_key in (None, key):
                who = "keyless" if flood_key is None else "authenticated"
                log(f"flood: {flooders} {who} clients sending {size / 1e6:g} MB bodies")
                argv = [PYTHON, str(Path(__file__).resolve()), "--duration", str(duration + 1),
                        "--flooders", str(flooders), "--body-mb", str(size / 1e6), "flood",
                        "--port", str(port)] + (["--key", flood_key] if flood_key else [])
                flooder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
                try:
                    time.sleep(0.5)  # let the flood start before measuring
                    cpu0 = gateway.cpu_seconds()
                    flooded = asyncio.run(authenticated(port, key, duration))
                    flood_cpu = gateway.cpu_seconds() - cpu0
                    out, _ = flooder.communicate(timeout=duration + 60)
                finally:
                    if flooder.poll() is None:
                        flooder.kill()
                        flooder.wait(10)
                line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
                rows.append((who, flooded, flood_cpu,
                             json.loads(line.removeprefix("BENCH_JSON "))))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nKeyless flood, {machine_line()}; {duration:g} s per phase, one authenticated "
          f"request in flight\n")
    table = [["ceiling: authenticated client alone", str(alone["ok"]), fmt(alone["p50_ms"], 1),
              fmt(alone["p99_ms"], 1), fmt(alone["max_ms"], 1), fmt(alone_cpu, 2), "-", "-",
              "-"]]
    for who, flooded, flood_cpu, result in rows:
        statuses = ", ".join(f"{'cut off' if code == '0' else code}: {n}"
                             for code, n in sorted(result["statuses"].items()))
        table.append([f"with {flooders} {who} clients x {size / 1e6:g} MB", str(flooded["ok"]),
                      fmt(flooded["p50_ms"], 1), fmt(flooded["p99_ms"], 1),
                      fmt(flooded["max_ms"], 1), fmt(flood_cpu, 2),
                      str(sum(result["statuses"].values())), statuses,
                      fmt(result["bytes_sent"] / 1e6, 0)])
    print_table(["phase", "auth'd 202s", "p50 ms", "p99 ms", "max ms", "server CPU s",
                 "flood requests", "flood answers", "flood MB sent"], table)
    keyless = rows[0][1]
    ratio = keyless["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else float("nan")
    others = alone["other"] + sum(r[1]["other"] for r in rows)
    print(f"\nSummary: authenticated p99 {fmt(keyless['p99_ms'], 1)} ms while keyless clients "
          f"flood vs {fmt(alone['p99_ms'], 1)} ms alone (x{fmt(ratio, 2)}); "
          f"{fmt(rows[1][1]['p99_ms'], 1)} ms while clients with a key send the same bodies "
          f"(what a keyless body cost before the key was checked first); non-202 answers to "
          f"the measured client: {others}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
