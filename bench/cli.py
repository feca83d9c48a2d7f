"""How long a user waits for the read-only `smsbridge` commands, beside Python's own start-up.

Each command runs as a fresh process, the way a user or a script runs it, against a migrated
SQLite database in a temporary folder holding a few messages. The figures are the median wall
time and the median CPU time (user + system of the child) over ``--runs`` runs. The ceilings,
measured in the same run, are a bare interpreter (`python -c pass`), one that imports Typer (the
least a Typer command can cost) and one that also imports SQLAlchemy (the least a command that
reads the store can cost).

    .venv/bin/python bench/cli.py [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PYTHON = sys.executable
# The installed console script when there is one: what a user types.
SMSBRIDGE = [str(Path(PYTHON).with_name("smsbridge"))]
if not Path(SMSBRIDGE[0]).exists():
    SMSBRIDGE = [PYTHON, "-m", "smsbridge.cli.main"]


def log(text: str) -> None:
    """Progress goes to stderr so that stdout holds only the figures."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def run_once(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(argv: Sequence[str], env: dict[str, str], cwd: Path, runs: int
            ) -> tuple[float, float]:
    """Median wall and CPU seconds over ``runs`` runs, after one unmeasured warm-up run."""
    run_once(argv, env, cwd)
    samples = [run_once(argv, env, cwd) for _ in range(runs)]
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))


def main(argv: Sequence[str] | None = None) -> None:
    """Set up a small database, then time each command and the ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per command")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="smsbridge-bench-cli-"))
    try:
        config = workdir / "smsbridge.toml"
        config.write_text('[server]\ndatabase = "sqlite:///data/smsbridge.db"\n\n'
                          '[[connections]]\nname = "sandbox"\ncarrier = "sandbox"\n'
                          'numbers = ["+15555550100"]\n', encoding="utf-8")
        env = {**os.environ, "SMSBRIDGE_CONFIG": str(config), "SMSBRIDGE_DATA_DIR": str(workdir)}
        log(f"setting up {workdir}")
        run_once([*SMSBRIDGE, "migrate"], env, workdir)
        run_once([*SMSBRIDGE, "keys", "create", "--name", "bench"], env, workdir)
        for i in range(3):
            run_once([*SMSBRIDGE, "send", "--from", "+15555550100", "--to", "+15145550111",
                      "--text", f"bench {i}"], env, workdir)
        rows: list[tuple[str, float, float]] = []
        for label, cmd in (
            ("python -c pass (ceiling)", [PYTHON, "-c", "pass"]),
            ('python -c "import typer" (ceiling)', [PYTHON, "-c", "import typer"]),
            ('python -c "import typer, sqlalchemy" (ceiling)',
             [PYTHON, "-c", "import typer, sqlalchemy"]),
            ("smsbridge --version", [*SMSBRIDGE, "--version"]),
            ("smsbridge messages --json", [*SMSBRIDGE, "messages", "--json"]),
            ("smsbridge carriers --json", [*SMSBRIDGE, "carriers", "--json"]),
            ("smsbridge keys list --json", [*SMSBRIDGE, "keys", "list", "--json"]),
        ):
            log(f"timing {label}")
            wall, cpu = measure(cmd, env, workdir, args.runs)
            rows.append((label, wall, cpu))
        width = max(len(r[0]) for r in rows)
        print(f"median of {args.runs} runs each ({Path(SMSBRIDGE[0]).name}, Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        print(f"{'command':<{width}}  {'wall s':>7}  {'CPU s':>7}")
        for label, wall, cpu in rows:
            print(f"{label:<{width}}  {wall:7.3f}  {cpu:7.3f}")
        floor = rows[1][2]
        slowest = max(rows[3:], key=lambda r: r[2])
        print(f"Summary: slowest command {slowest[0]!r} {slowest[2]:.3f} s CPU; "
              f"import typer alone {floor:.3f} s CPU")
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
