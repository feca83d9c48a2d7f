"""The Home Assistant integration's texts: generated from the registry, and up to date."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smsbridge.providers.registry import BUILTIN, get_provider_class

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ha-translations"
INTEGRATION = ROOT / "custom_components" / "smsbridge"
SETTINGS_STEPS = ("credentials", "reauth_confirm", "reconfigure")
# The forms that offer base_url in a collapsed section (Home Assistant 2026.6 and later).
SECTION_STEPS = ("credentials", "reconfigure")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """scripts/ha-translations with this interpreter (the project's venv)."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_translations_are_up_to_date() -> None:
    result = run_script("--check")

    assert result.returncode == 0, result.stderr


def test_en_json_is_strings_json() -> None:
    strings = (INTEGRATION / "strings.json").read_text(encoding="utf-8")

    assert (INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8") == strings


@pytest.mark.parametrize("carrier", sorted(BUILTIN))
def test_every_setting_of_every_builtin_carrier_is_labelled(carrier: str) -> None:
    steps = json.loads((INTEGRATION / "translations" / "en.json").read_text(
        encoding="utf-8"))["config"]["step"]

    for name in get_provider_class(carrier).Config.model_fields:
        for step_id in SETTINGS_STEPS:
            assert steps[step_id]["data"][name], (step_id, name)
            # The flow fills this placeholder with the carrier's own description of the field.
            assert steps[step_id]["data_description"][name] == f"{{help_{name}}}"


def test_labels_read_as_words() -> None:
    data = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8")
                      )["config"]["step"]["credentials"]["data"]

    assert data["api_password"] == "API password"
    assert data["account_sid"] == "Account SID"
    assert data["timeout_seconds"] == "Timeout (seconds)"
    assert data["base_url"] == "Base URL"


@pytest.mark.parametrize("step_id", SECTION_STEPS)
def test_the_advanced_section_has_a_name_and_labels_its_settings(step_id: str) -> None:
    step = json.loads((INTEGRATION / "translations" / "en.json").read_text(
        encoding="utf-8"))["config"]["step"][step_id]

    section = step["sections"]["advanced"]

    assert section["name"] == "Advanced settings"
    assert "proxy" in section["description"]
    # The frontend labels a field in a section from the section's texts, not the step's.
    assert section["data"] == {"base_url": "Base URL"}
    assert section["data_description"] == {"base_url": "{help_base_url}"}


def test_check_names_a_stale_file_and_the_script_repairs_it(tmp_path: Path) -> None:
    copy = tmp_path / "smsbridge"
    shutil.copytree(INTEGRATION, copy, ignore=shutil.ignore_patterns("__pycache__"))
    strings = json.loads((copy / "strings.json").read_text(encoding="utf-8"))
    del strings["config"]["step"]["credentials"]["data"]["api_password"]
    (copy / "strings.json").write_text(json.dumps(strings), encoding="utf-8")
    (copy / "translations" / "en.json").unlink()

    stale = run_script("--check", "--integration", str(copy))

    assert stale.returncode == 1
    assert "strings.json is out of date" in stale.stderr
    assert "en.json is out of date" in stale.stderr
    assert run_script("--integration", str(copy)).returncode == 0
    assert run_script("--check", "--integration", str(copy)).returncode == 0
    assert (copy / "strings.json").read_text(encoding="utf-8") == (
        INTEGRATION / "strings.json").read_text(encoding="utf-8")


def test_hand_written_texts_survive_a_rewrite(tmp_path: Path) -> None:
    copy = tmp_path / "smsbridge"
    shutil.copytree(INTEGRATION, copy, ignore=shutil.ignore_patterns("__pycache__"))
    strings = json.loads((copy / "strings.json").read_text(encoding="utf-8"))
    strings["config"]["abort"]["already_configured"] = "Déjà fait."
    advanced = strings["config"]["step"]["reconfigure"]["sections"]["advanced"]
    advanced["name"] = "Réglages avancés"
    del advanced["data"]
    (copy / "strings.json").write_text(json.dumps(strings), encoding="utf-8")

    assert run_script("--integration", str(copy)).returncode == 0

    written = json.loads((copy / "translations" / "en.json").read_text(encoding="utf-8"))
    assert written["config"]["abort"]["already_configured"] == "Déjà fait."
    assert written["config"]["step"]["credentials"]["data"]["api_password"] == "API password"
    section = written["config"]["step"]["reconfigure"]["sections"]["advanced"]
    assert section["name"] == "Réglages avancés"
    assert section["data"] == {"base_url": "Base URL"}
