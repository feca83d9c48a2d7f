"""scripts/setup installs only what is asked, once: serve needs the server, the tests more."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Stands in for .venv/bin/python: records each pip call instead of installing anything.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> "$(dirname "$0")/pip.log"; fi
exit 0
"""


def test_serve_installs_the_server_only_and_switching_never_loses_the_test_extra(
        tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup", tmp_path / "scripts" / "setup")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    log = python.parent / "pip.log"

    def setup(*extras: str) -> list[str]:
        """The packages `scripts/setup EXTRAS` installed (empty when it installed nothing)."""
        before = log.read_text().splitlines() if log.exists() else []
        subprocess.run(["bash", "scripts/setup", *extras], cwd=tmp_path, check=True,
                       capture_output=True, timeout=60)
        after = log.read_text().splitlines() if log.exists() else []
        return [line.split()[-1] for line in after[len(before):] if " -e " in line]

    assert setup("server") == [".[server]"]  # scripts/serve: no pytest, mypy, ruff, twilio
    assert setup("server") == []
    assert setup("server,test") == [".[server,test]"]  # scripts/test after serve
    assert setup("server") == []  # serve after test: the server is already there
    assert setup() == []  # the default is what the tests need
    with (tmp_path / "pyproject.toml").open("a") as file:
        file.write("\n# changed\n")
    assert setup("server") == [".[server,test]"]  # a change reinstalls what was there


def test_the_scripts_ask_for_the_right_extras() -> None:
    assert "scripts/setup server\n" in (REPO / "scripts" / "serve").read_text()
    assert "scripts/setup server,test\n" in (REPO / "scripts" / "test").read_text()
