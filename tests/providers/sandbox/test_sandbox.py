"""The sandbox carrier: recorded payloads in, messages or precise errors out; sends as set."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import MessageStatus, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.sandbox.provider import SandboxConfig, SandboxProvider

FIXTURES = Path(__file__).parent / "fixtures"


def request(name: str) -> WebhookRequest:
    return WebhookRequest("POST", "http://127.0.0.1/in", {"content-type": "application/json"},
                          [], (FIXTURES / name).read_bytes())


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("inbound_sms.json", [("sbx-in-0001", "+15145550111", "+15555550100", "ARM SV", [])]),
        ("inbound_mms.json", [("sbx-in-0002", "+15145550111", "+15555550100",
                               "Front door 📷\nsee photo",
                               [("https://cdn.example.com/snap.jpg", "image/jpeg"),
                                ("https://cdn.example.com/clip.mp4",
                                 "application/octet-stream")])]),
    ],
)
def test_parse_inbound(fixture: str, expected: list) -> None:
    got = SandboxProvider(SandboxConfig()).parse_inbound(request(fixture))
    assert [(m.carrier_message_id, m.from_number, m.to_number, m.text,
             [(x.url, x.content_type) for x in m.media]) for m in got] == expected


@pytest.mark.parametrize(("fixture", "error"), [
    ("inbound_missing_from.json", "missing from"),
    ("inbound_bad_media.json", "needs a 'url'"),
])
def test_parse_inbound_rejects_malformed(fixture: str, error: str) -> None:
    with pytest.raises(MalformedWebhook, match=error):
        SandboxProvider(SandboxConfig()).parse_inbound(request(fixture))


@pytest.mark.parametrize(("fixture", "status", "code"), [
    ("status_delivered.json", MessageStatus.DELIVERED, None),
    ("status_failed.json", MessageStatus.FAILED, "sandbox_failure"),
])
def test_parse_status(fixture: str, status: MessageStatus, code: str | None) -> None:
    [update] = SandboxProvider(SandboxConfig()).parse_status(request(fixture))
    assert (update.carrier_message_id, update.status, update.error_code) == (
        "sbx-5c1f0e2d", status, code)


def test_parse_status_rejects_unknown_status() -> None:
    with pytest.raises(MalformedWebhook, match="must be one of"):
        SandboxProvider(SandboxConfig()).parse_status(request("status_unknown.json"))


MESSAGE = OutboundMessage("msg_1", "+15555550100", "+15145550111", "hi")


async def test_send_confirms_delivery_or_not_as_configured() -> None:
    async with aiohttp.ClientSession() as http:
        with_receipts = await SandboxProvider(SandboxConfig()).send(MESSAGE, http)
        without = await SandboxProvider(SandboxConfig(delivery_receipts=False)).send(MESSAGE, http)
    assert with_receipts.status is MessageStatus.DELIVERED
    assert without.status is MessageStatus.SENT
    assert with_receipts.carrier_message_id != without.carrier_message_id


@pytest.mark.parametrize("retryable", [True, False])
async def test_send_fails_at_the_configured_rate(retryable: bool) -> None:
    provider = SandboxProvider(SandboxConfig(failure_rate=1.0, failure_retryable=retryable))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as caught:
            await provider.send(MESSAGE, http)
    assert caught.value.retryable is retryable and caught.value.code == "sandbox_failure"


def test_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        SandboxConfig(failure_rate=1.5)
