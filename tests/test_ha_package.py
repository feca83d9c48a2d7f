"""The Home Assistant package as HACS and Home Assistant read it, checked without Home Assistant.

The integration itself is tested inside a real Home Assistant by tests_ha/ (scripts/test-ha);
these checks need only the files, so they run in the main suite on any Python.
"""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "smsbridge"
HA_CONSTRAINTS = sorted((ROOT / "tests_ha" / "constraints").glob("homeassistant-*.txt"))
# What the integration may use of smsbridge (DESIGN.md: HA's rules, core and providers only).
ALLOWED = ("smsbridge.core", "smsbridge.providers")


def pyproject() -> dict[str, object]:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def manifest() -> dict[str, object]:
    """The integration's manifest.json, parsed."""
    return json.loads((INTEGRATION / "manifest.json").read_text())


def test_manifest_requires_this_very_version_of_smsbridge() -> None:
    version = pyproject()["project"]["version"]  # type: ignore[index]
    data = manifest()
    assert data["requirements"] == [f"smsbridge=={version}"]
    assert data["version"] == version


def test_manifest_and_hacs_json_have_what_home_assistant_and_hacs_read() -> None:
    data = manifest()
    assert data["domain"] == INTEGRATION.name == "smsbridge"
    assert data["config_flow"] is True
    assert data["dependencies"] == ["webhook"]
    assert "camera" in data["after_dependencies"]  # type: ignore[operator]
    assert data["iot_class"] == "local_push"
    for key in ("name", "codeowners", "documentation", "issue_tracker"):
        assert data[key], key
    assert str(data["documentation"]).startswith("https://")
    # hassfest: domain and name first, every other key in alphabetical order.
    keys = list(data)
    assert keys[:2] == ["domain", "name"] and keys[2:] == sorted(keys[2:])
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["name"]
    # HACS installs one integration per repository, from custom_components/<domain>.
    assert [p.name for p in (ROOT / "custom_components").iterdir() if p.is_dir()
            and not p.name.startswith("__")] == ["smsbridge"]


def smsbridge_imports(path: Path) -> list[tuple[int, str]]:
    """Every smsbridge module a file imports, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found
            if name == "smsbridge" or name.startswith("smsbridge.")]


def test_the_integration_imports_only_core_and_providers_of_smsbridge() -> None:
    files = sorted(INTEGRATION.rglob("*.py"))
    assert INTEGRATION / "__init__.py" in files
    wrong = [f"{path.relative_to(ROOT)}:{line}: {name}"
             for path in files for line, name in smsbridge_imports(path)
             if not any(name == allowed or name.startswith(allowed + ".")
                        for allowed in ALLOWED)]
    assert wrong == []


def test_the_import_check_sees_what_it_forbids(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import smsbridge.store\nfrom smsbridge.gateway import x\n"
                      "from smsbridge.providers import y\nfrom . import z\n")
    assert smsbridge_imports(module) == [
        (1, "smsbridge.store"), (2, "smsbridge.gateway"), (3, "smsbridge.providers")]


@pytest.mark.parametrize("constraints", HA_CONSTRAINTS, ids=lambda p: p.stem)
def test_the_bare_install_fits_home_assistants_pins(constraints: Path) -> None:
    """`pip install smsbridge` (no extras) must not fight a package Home Assistant pins."""
    pins: dict[str, Version] = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            requirement = Requirement(line)
            spec = next(iter(requirement.specifier))
            pins[requirement.name.lower().replace("_", "-")] = Version(spec.version)
    dependencies = [Requirement(d) for d in pyproject()["project"]["dependencies"]]  # type: ignore[index]
    clashes = [f"{dep} vs HA's {pins[name]}" for dep in dependencies
               if (name := dep.name.lower().replace("_", "-")) in pins
               and not dep.specifier.contains(pins[name], prereleases=True)]
    assert clashes == []
    # The pins that matter to the providers are in the file: a wrong file would pass empty.
    assert {"aiohttp", "pydantic", "cryptography", "yarl"} <= set(pins)


def test_home_assistants_constraints_are_committed() -> None:
    # scripts/ha-setup installs within them; without one the check above runs on nothing.
    assert HA_CONSTRAINTS


@pytest.mark.parametrize(("name", "side"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_the_brand_icons_ship_inside_the_integration(name: str, side: int) -> None:
    """HACS's check and Home Assistant 2026.3+ read custom_components/<domain>/brand/."""
    data = (INTEGRATION / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # IHDR is the first chunk: width and height, big-endian, right after its type.
    assert data[12:16] == b"IHDR"
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (side, side)
