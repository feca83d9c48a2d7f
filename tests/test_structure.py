"""Tests that keep the structure honest: layers, registry, public surfaces, light installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import smsbridge.core
import smsbridge.providers
from smsbridge.providers.registry import BUILTIN, get_provider_class

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ROOT / "src" / "smsbridge" / "providers"


def test_import_contracts_hold() -> None:
    """Imports point down the layers of DESIGN.md; providers never see store, web or server."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_registry_matches_the_carrier_folders() -> None:
    folders = {p.parent.name for p in PROVIDERS.glob("*/provider.py")}
    assert folders == set(BUILTIN)
    for key in BUILTIN:
        cls = get_provider_class(key)
        assert cls.key == key
        assert (ROOT / "tests" / "providers" / key / "fixtures").is_dir(), key
        assert (ROOT / "docs" / "carriers" / f"{key}.md").is_file(), key


@pytest.mark.parametrize("module", [smsbridge.core, smsbridge.providers])
def test_public_surface_is_declared(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None


def test_providers_load_without_the_server_stack() -> None:
    """What Home Assistant imports (core + providers) pulls in no web framework or database."""
    code = (
        "import sys\n"
        "from smsbridge.providers.registry import BUILTIN, get_provider_class\n"
        "[get_provider_class(k) for k in BUILTIN]\n"
        "heavy = {'fastapi', 'starlette', 'sqlalchemy', 'uvicorn', 'alembic', 'typer'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
