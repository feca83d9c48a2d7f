"""Run `smsbridge` as a real process, the way a user does (serve, worker, follow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def write_config(path: Path, *, database: str, listen: str, connections: list[dict[str, Any]],
                 worker: dict[str, Any] | None = None) -> Path:
    """Write a TOML config file in the documented shape."""
    lines = ["[server]", f'listen = "{listen}"', f'database = "{database}"', "", "[worker]"]
    for key, value in (worker or {}).items():
        lines.append(f"{key} = {value!r}")
    for conn in connections:
        lines += ["", "[[connections]]", f'name = "{conn["name"]}"',
                  f'carrier = "{conn["carrier"]}"',
                  "numbers = [" + ", ".join(f'"{n}"' for n in conn["numbers"]) + "]",
                  "[connections.settings]"]
        for key, value in conn.get("settings", {}).items():
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class SmsbridgeProcess:
    """`smsbridge <args>` in its own process group; stdout and stderr go to files."""

    def __init__(self, args: list[str], workdir: Path, name: str,
                 env: dict[str, str] | None = None, python: str = sys.executable) -> None:
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        # Without a configured database smsbridge uses the data folder: keep it in the test's.
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "SMSBRIDGE_DATA_DIR": str(workdir / "data"), **(env or {})}
        self.proc = subprocess.Popen(
            [python, "-m", "smsbridge.cli.main", *args], cwd=workdir,
            stdout=self._out, stderr=self._err, env=env, start_new_session=True)

    def wait_for(self, text: str, timeout: float = 20.0, stream: str = "stderr") -> None:
        """Wait until ``text`` appears in the process's output."""
        path = self.stderr_path if stream == "stderr" else self.stdout_path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited {self.proc.returncode}: "
                                     f"{self.stderr_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in {timeout}s: "
                             f"{path.read_text(errors='replace')[-2000:]}")

    def output(self, stream: str = "stderr") -> str:
        """Everything the process printed so far on ``stream``."""
        path = self.stderr_path if stream == "stderr" else self.stdout_path
        return path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or power cut."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()
        self._err.close()


