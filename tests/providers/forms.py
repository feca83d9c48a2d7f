"""Recorded form-encoded webhook bodies, as the provider tests read and change them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl


def form_fixture(path: Path) -> list[tuple[str, str]]:
    """The fields of a recorded form body, in order, blanks kept."""
    return parse_qsl(path.read_text().strip(), keep_blank_values=True)


def changed(pairs: list[tuple[str, str]], drop: tuple[str, ...] = (),
            **changes: str) -> list[tuple[str, str]]:
    """``pairs`` with the ``drop`` fields removed and ``changes`` set (added when absent)."""
    kept = [(k, changes.get(k, v)) for k, v in pairs if k not in drop]
    present = {k for k, _ in kept}
    return kept + [(k, v) for k, v in changes.items() if k not in present]
