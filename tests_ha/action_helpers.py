"""What the action, notify and server-mode tests share: entries set up with the actions
registered, calling an action, the words a failure shows, a camera, and waiting for a fact.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from collections.abc import Callable
from typing import Any

from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_integration,
    mock_platform,
)

from .conftest import DOMAIN, REPO_ROOT

INTEGRATION = REPO_ROOT / "custom_components" / "smsbridge"
# The PNG the test camera serves: a real 2x2 image.
SNAPSHOT = (REPO_ROOT / "tests_ha" / "fixtures" / "snapshot.png").read_bytes()


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up ``entry``, and make sure the actions are there."""
    if hass.config_entries.async_get_entry(entry.entry_id) is None:
        entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.services.has_service(DOMAIN, "send_message"), "the actions are not registered"


async def act(hass: HomeAssistant, service: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call an smsbridge action as an automation does, and return its response data."""
    response = await hass.services.async_call(DOMAIN, service, data, blocking=True,
                                              return_response=True)
    assert response is not None
    return dict(response)


def _exception_texts() -> dict[str, Any]:
    """The English texts of the integration's translated errors, as Home Assistant reads them."""
    path = INTEGRATION / "translations" / "en.json"
    texts: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["exceptions"]
    return texts


EXCEPTIONS = _exception_texts()


def shown(exc: HomeAssistantError) -> str:
    """The English message a translated failure shows the user, every placeholder filled."""
    assert exc.translation_domain == DOMAIN
    assert exc.translation_key in EXCEPTIONS, f"no text for {exc.translation_key}"
    template = EXCEPTIONS[exc.translation_key]["message"]
    wanted = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    given = exc.translation_placeholders or {}
    assert wanted <= set(given), f"placeholders without a value: {sorted(wanted - set(given))}"
    return str(template.format(**given))


class SnapshotCamera(Camera):
    """A camera whose still image is SNAPSHOT."""

    _attr_name = "Porch"
    _attr_unique_id = "porch-camera"

    def __init__(self) -> None:
        """A PNG camera."""
        super().__init__()
        self.content_type = "image/png"

    async def async_camera_image(self, width: int | None = None, height: int | None = None
                                 ) -> bytes:
        """The fixture image."""
        return SNAPSHOT


async def add_camera(hass: HomeAssistant) -> str:
    """Set up Home Assistant's camera integration with SnapshotCamera; its entity id."""
    async def setup_platform(hass: HomeAssistant, config: Any, add_entities: Any,
                             discovery_info: Any = None) -> None:
        add_entities([SnapshotCamera()])

    mock_integration(hass, MockModule("porch_test"))
    mock_platform(hass, "porch_test.camera", MockPlatform(async_setup_platform=setup_platform))
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "porch_test"}})
    await hass.async_block_till_done()
    return "camera.porch"


async def wait_for(fact: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    """Poll until ``fact()`` is truthy, and return it; fail naming ``what`` if it never is."""
    deadline = time.monotonic() + seconds
    while True:
        value = fact()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)
