"""Each fake carrier runs on its own as ``python -m smsbridge.testing.fake_<carrier>``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

import smsbridge.testing
from smsbridge.testing import fake_base

FAKES = sorted(p.stem for p in Path(smsbridge.testing.__file__).parent.glob("fake_*.py")
               if p.stem != "fake_base")


def served_by(module_name: str, monkeypatch: pytest.MonkeyPatch, argv: list[str]
              ) -> tuple[Any, str, int, str]:
    """What the fake's ``main(argv)`` would serve: app, host, port and banner."""
    module = importlib.import_module(f"smsbridge.testing.{module_name}")
    seen: list[tuple[Any, str, int, str]] = []
    # The module's own name for fake_base.serve (a fake with a serve() method renames it).
    (name,) = [n for n, v in vars(module).items() if v is fake_base.serve]
    monkeypatch.setattr(module, name, lambda *args: seen.append(args))
    module.main(argv)
    (served,) = seen
    return served


@pytest.mark.parametrize("module_name", [f for f in FAKES if f != "fake_signalwire"])
def test_a_fake_serves_its_api_where_it_is_told(module_name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app, host, port, banner = served_by(module_name, monkeypatch,
                                        ["--host", "127.0.0.2", "--port", "9999"])
    assert (host, port) == ("127.0.0.2", 9999)
    assert "http://127.0.0.2:9999" in banner
    assert callable(app)


def test_fakes_default_to_ports_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several fakes can run side by side with no --port given."""
    ports = {name: served_by(name, monkeypatch, [])[2]
             for name in FAKES if name != "fake_signalwire"}
    assert len(set(ports.values())) == len(ports), ports
