"""Shared helpers of the smsbridge benchmarks: server processes, gateway config, load generation.

The load generators read one "request file": a line per request, ``<header value>\\t<body>``,
where the header (for example ``X-Twilio-Signature``) differs per request and every other header
is the same for all. Two generators read it:

- ``wrk`` (Debian's package), driven by a generated Lua script; light on CPU, so it leaves the
  2 cores to the server it measures;
- a fallback written with aiohttp, run as a separate process (``python common.py loadgen ...``),
  when wrk is not installed. It costs the server noticeably more CPU; figures say which was used.

Run directly, this file also serves the bare Starlette endpoint (``python common.py bare-server``)
and is the fallback load generator (``python common.py loadgen``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Twilio account the fake and the gateway's connection share (the fake's own defaults).
ACCOUNT_SID = "AC" + "5ca1ab1e" * 4
AUTH_TOKEN = "fa4e70ce" * 4
OUR_NUMBER = "+15145550100"
THEIR_NUMBER = "+15145550111"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(text: str) -> None:
    """Progress goes to stderr so that stdout holds only the figures."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- server processes


class ServerProcess:
    """A server run as a child process; ``stop`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log: TextIO = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(log_path.parent), env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: Ctrl-C in the bench does not hit it
        )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        """Poll ``url`` until any HTTP answer comes back (a 404 counts: the server is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"log:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout:g} s; "
                           f"log:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used so far (all its threads)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL at once: nothing gets a chance to flush (used to test durability)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@contextlib.contextmanager
def servers() -> Iterator[list[ServerProcess]]:
    """A list to append started servers to; every one is stopped on exit, error or not."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()


def start_gateway(workdir: Path, config: Path, port: int, *, worker: bool = True,
                  name: str = "gateway") -> ServerProcess:
    """``smsbridge serve --config FILE`` as a child; returns once /healthz answers."""
    argv = [PYTHON, "-m", "smsbridge.cli.main", "serve", "--config", str(config)]
    if not worker:
        argv.append("--no-worker")
    server = ServerProcess(name, argv, workdir / f"{name}.log")
    server.wait_ready(f"http://127.0.0.1:{port}/healthz")
    return server


def start_bare(workdir: Path, port: int) -> ServerProcess:
    """The bare Starlette endpoint of this file on uvicorn, as a child."""
    argv = [PYTHON, str(Path(__file__).resolve()), "bare-server", "--port", str(port)]
    server = ServerProcess("bare-starlette", argv, workdir / "bare.log")
    server.wait_ready(f"http://127.0.0.1:{port}/")
    return server


def start_fake_twilio(workdir: Path, port: int) -> ServerProcess:
    """``python -m smsbridge.testing.fake_twilio`` as a child."""
    argv = [PYTHON, "-m", "smsbridge.testing.fake_twilio", "--port", str(port),
            "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    server = ServerProcess("fake-twilio", argv, workdir / "fake_twilio.log")
    server.wait_ready(f"http://127.0.0.1:{port}/")
    return server


# ---------------------------------------------------------------- the gateway's config and CLI


def write_config(workdir: Path, name: str, port: int, database: Path, *,
                 fake_port: int | None = None, concurrency: int = 50) -> Path:
    """A gateway config: one Twilio connection, SQLite at ``database``, no public_url."""
    base_url = f'base_url = "http://127.0.0.1:{fake_port}"\n' if fake_port else ""
    text = f"""\
[server]
listen = "127.0.0.1:{port}"
database = "sqlite:///{database}"
log_level = "warning"

[worker]
concurrency = {concurrency}
poll_interval = 1.0

[[connections]]
name = "tw"
carrier = "twilio"
numbers = ["{OUR_NUMBER}"]

[connections.settings]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
{base_url}"""
    path = workdir / f"{name}.toml"
    path.write_text(text)
    # Only serve, worker and migrate create the schema; the CLI calls below read it.
    subprocess.run([PYTHON, "-m", "smsbridge.cli.main", "migrate", "--config", str(path)],
                   capture_output=True, timeout=120, check=True, cwd=str(workdir))
    return path


def smsbridge_json(config: Path, *args: str) -> Any:
    """Run ``smsbridge ARGS --config FILE --json`` and return its parsed output."""
    argv = [PYTHON, "-m", "smsbridge.cli.main", *args, "--config", str(config), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          cwd=str(config.parent))
    if done.returncode != 0:
        raise RuntimeError(f"smsbridge {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def inbound_path(config: Path, connection: str = "tw") -> str:
    """The connection's inbound webhook path, token included (from ``smsbridge carriers``)."""
    rows = smsbridge_json(config, "carriers")["data"]
    url = next(r["inbound_url"] for r in rows if r["name"] == connection)
    return "/" + url.split("/", 3)[3]


# ---------------------------------------------------------------- load generation


@dataclass
class LoadSpec:
    """What to send: the path, the fixed headers, the varying header's name, the request file."""

    port: int
    path: str
    headers: dict[str, str]
    varying_header: str | None
    requests_file: Path
    expect_status: int


@dataclass
class LoadResult:
    """What a load generator measured."""

    tool: str
    seconds: float
    ok: int  # answers with the expected status
    non_ok: int  # other HTTP answers
    socket_errors: int  # connect/read/write errors and timeouts
    issued: int  # requests sent (wrk may stop with some of them unanswered)
    wrapped: bool  # the request file ran out and requests repeated
    p50_ms: float
    p99_ms: float
    first_bad_status: int
    server_cpu_s: float = float("nan")
    loadgen_cpu_s: float = float("nan")

    @property
    def rate(self) -> float:
        """Accepted requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU per accepted request, in microseconds."""
        return self.server_cpu_s / self.ok * 1e6 if self.ok else float("nan")

    @property
    def loadgen_cpu_us_per_request(self) -> float:
        """Load generator CPU per accepted request, in microseconds."""
        return self.loadgen_cpu_s / self.ok * 1e6 if self.ok else float("nan")


def write_requests(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    """Write the request file: ``<varying header value>\\t<body>`` per line."""
    with path.open("w") as out:
        for value, body in rows:
            if "\t" in value or "\n" in body or "\t" in body:
                raise ValueError("request file rows may hold no tab or newline")
            out.write(f"{value}\t{body}\n")


def have_wrk() -> bool:
    """True when the wrk binary is on PATH."""
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def wrk_script(spec: LoadSpec, threads: int, cycle: bool) -> str:
    """The Lua script that makes wrk send each line of the request file once (or cycle)."""
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec.headers.items())
    varying = _lua_string(spec.varying_header) if spec.varying_header else "nil"
    return f"""\
-- generated by bench/common.py; every wrk thread reads its own share of the request file
local data_path = {_lua_string(str(spec.requests_file))}
local path = {_lua_string(spec.path)}
local varying = {varying}
local nthreads = {threads}
local cycle = {"true" if cycle else "false"}
local expect = {spec.expect_status}
local threads = {{}}
local reqs = {{}}
local count = 0
local nexti = 1
issued, ok, non_ok, bad, wrapped = 0, 0, 0, 0, 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  probe = (tid == 0)
  local i = 0
  for line in io.lines(data_path) do
    if i % nthreads == tid then
      local tab = line:find("\\t", 1, true)
      local h = {{ {headers} }}
      if varying then h[varying] = line:sub(1, tab - 1) end
      count = count + 1
      reqs[count] = wrk.format("POST", path, h, line:sub(tab + 1))
    end
    i = i + 1
  end
end

function request()
  if probe then
    -- wrk calls request() once on thread 0 before the run to check the script; nothing is sent
    probe = false
    return reqs[1]
  end
  if nexti > count then
    nexti = 1
    wrapped = 1
    if not cycle then
      -- out of unique requests: stop this thread rather than send a duplicate
      wrk.thread:stop()
      return wrk.format("GET", "/healthz")
    end
  end
  local r = reqs[nexti]
  nexti = nexti + 1
  issued = issued + 1
  return r
end

function response(status, headers, body)
  if status == expect then
    ok = ok + 1
  else
    non_ok = non_ok + 1
    if bad == 0 then bad = status end
  end
end

function done(summary, latency, requests)
  local t = {{issued = 0, ok = 0, non_ok = 0, bad = 0, wrapped = 0}}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      local v = thread:get(k)
      if k == "bad" or k == "wrapped" then
        if v ~= 0 then t[k] = v end
      else
        t[k] = t[k] + v
      end
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"seconds": %.6f, "ok": %d, "non_ok": %d, "issued": %d, "wrapped": %d, ' ..
    '"bad": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.duration / 1e6, t.ok, t.non_ok, t.issued, t.wrapped, t.bad,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def run_load(spec: LoadSpec, workdir: Path, *, duration: float, connections: int,
             cycle: bool = False, server: ServerProcess | None = None,
             force_python: bool = False) -> LoadResult:
    """Drive ``spec`` for ``duration`` seconds with wrk (or the aiohttp fallback)."""
    use_wrk = have_wrk() and not force_python
    cpu_before = server.cpu_seconds() if server else float("nan")
    seconds = max(1, round(duration))
    if use_wrk:
        threads = 1  # one wrk thread keeps ~50 connections busy and leaves the cores to the server
        script = workdir / f"load_{spec.requests_file.stem}.lua"
        script.write_text(wrk_script(spec, threads, cycle))
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{spec.port}"]
        tool = "wrk"
    else:
        argv = [PYTHON, str(Path(__file__).resolve()), "loadgen", "--port", str(spec.port),
                "--path", spec.path, "--headers", json.dumps(spec.headers),
                "--varying-header", spec.varying_header or "", "--requests",
                str(spec.requests_file), "--connections", str(connections), "--duration",
                str(seconds), "--expect", str(spec.expect_status)]
        if cycle:
            argv.append("--cycle")
        tool = "aiohttp (fallback; install wrk for lighter load generation)"
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = server.cpu_seconds() if server else float("nan")
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed ({done.returncode}): "
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        tool=tool, seconds=data["seconds"], ok=data["ok"], non_ok=data["non_ok"],
        socket_errors=data["socket_errors"], issued=data["issued"],
        wrapped=bool(data["wrapped"]), p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, first_bad_status=data["bad"],
        server_cpu_s=cpu_after - cpu_before,
        loadgen_cpu_s=(children_after.ru_utime + children_after.ru_stime
                       - children_before.ru_utime - children_before.ru_stime),
    )


# ---------------------------------------------------------------- printing


def fmt(value: float, digits: int = 0) -> str:
    """A number for the tables (``-`` for NaN)."""
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain Markdown table on stdout (pastes into the README as is)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def machine_line() -> str:
    """A one-line description of where the figures were measured."""
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"


# ---------------------------------------------------------------- child-process entry points


def bare_server(port: int) -> None:
    """A Starlette app that reads the body and answers 200, on uvicorn like the gateway."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(request: Request) -> Response:
        await request.body()
        return Response(b"", 200)

    app = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                server_header=False)


async def _aiohttp_load(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    fixed = json.loads(args.headers)
    rows: list[tuple[dict[str, str], bytes]] = []
    with open(args.requests) as src:
        for line in src:
            value, _, body = line.rstrip("\n").partition("\t")
            headers = dict(fixed)
            if args.varying_header:
                headers[args.varying_header] = value
            rows.append((headers, body.encode()))
    url = f"http://127.0.0.1:{args.port}{args.path}"
    latencies: list[float] = []
    counts = {"ok": 0, "non_ok": 0, "errors": 0, "issued": 0, "bad": 0, "wrapped": 0}
    cursor = 0
    deadline = time.monotonic() + args.duration

    def next_row() -> tuple[dict[str, str], bytes] | None:
        nonlocal cursor
        if cursor >= len(rows):
            counts["wrapped"] = 1
            if not args.cycle:
                return None
            cursor = 0
        row = rows[cursor]
        cursor += 1
        return row

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            row = next_row()
            if row is None:
                return
            counts["issued"] += 1
            start = time.perf_counter()
            try:
                async with session.post(url, data=row[1], headers=row[0]) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - start)
            if status == args.expect:
                counts["ok"] += 1
            else:
                counts["non_ok"] += 1
                counts["bad"] = counts["bad"] or status

    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=10)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.connections)))
    seconds = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6) \
            if latencies else 0

    return {"seconds": seconds, "ok": counts["ok"], "non_ok": counts["non_ok"],
            "issued": counts["issued"], "wrapped": counts["wrapped"], "bad": counts["bad"],
            "socket_errors": counts["errors"], "p50_us": pct(0.50), "p99_us": pct(0.99)}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry points used as child processes by the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bare = sub.add_parser("bare-server", help="serve the bare Starlette endpoint")
    bare.add_argument("--port", type=int, required=True)
    load = sub.add_parser("loadgen", help="the aiohttp load generator (wrk's stand-in)")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--path", required=True)
    load.add_argument("--headers", default="{}")
    load.add_argument("--varying-header", default="")
    load.add_argument("--requests", required=True)
    load.add_argument("--connections", type=int, default=50)
    load.add_argument("--duration", type=float, default=10)
    load.add_argument("--expect", type=int, default=200)
    load.add_argument("--cycle", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "bare-server":
        bare_server(args.port)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print("BENCH_JSON " + json.dumps(asyncio.run(_aiohttp_load(args))), flush=True)


if __name__ == "__main__":
    main()
