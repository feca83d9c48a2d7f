"""The package a release uploads, as `python -m build` makes it and `twine check` reads it.

Home Assistant installs the bare wheel (manifest.json names it), so what it holds and
requires is checked here, from the working tree copied aside so the build leaves nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a build reads: everything else of the repository stays out of the sdist.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "src")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sdist and wheel built from a copy of the working tree."""
    work = tmp_path_factory.mktemp("release")
    source = work / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    out = work / "dist"
    # No isolation: the build backend (setuptools) is the test environment's, offline.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    yield out


def wheel(dist: Path) -> zipfile.ZipFile:
    """The built wheel, open."""
    (path,) = dist.glob("smsbridge-*-py3-none-any.whl")
    return zipfile.ZipFile(path)


def test_twine_finds_both_distributions_fit_for_upload(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert len(files) == 2, files  # the sdist and the wheel
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_wheel_holds_every_carrier_the_migrations_and_the_license(dist: Path) -> None:
    names = set(wheel(dist).namelist())
    carriers = {p.parent.name for p in (ROOT / "src/smsbridge/providers").glob("*/provider.py")}
    assert {f"smsbridge/providers/{c}/provider.py" for c in carriers} <= names
    migrations = {f"smsbridge/store/migrations/versions/{p.name}"
                  for p in (ROOT / "src/smsbridge/store/migrations/versions").glob("0*.py")}
    assert migrations and migrations <= names
    assert {"smsbridge/py.typed", "smsbridge/store/migrations/script.py.mako"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # Neither the tests nor the Home Assistant integration travel in the library's wheel.
    assert not [n for n in names if n.startswith(("tests", "custom_components"))]


def test_the_bare_wheel_requires_only_what_home_assistant_gets(dist: Path) -> None:
    archive = wheel(dist)
    (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(archive.read(metadata_name).decode())
    bare = sorted(r.split(">")[0].split("=")[0].strip() for r in metadata.get_all("Requires-Dist")
                  if "extra ==" not in r)
    assert bare == ["aiohttp", "cryptography", "phonenumbers", "pydantic", "yarl"]
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
