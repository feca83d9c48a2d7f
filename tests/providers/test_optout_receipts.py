"""Receipts that say the recipient opted out are flagged, for each carrier that says it there."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from smsbridge.providers import MessageStatus, WebhookRequest, get_provider_class

STATUS_URL = "https://gw.example/v1/carriers/c/tok/status"


def request(body: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> WebhookRequest:
    """A POST to the status URL."""
    return WebhookRequest("POST", STATUS_URL, {"content-type": content_type, **(headers or {})},
                          [], body)


def bandwidth(code: int) -> WebhookRequest:
    event = [{"type": "message-failed", "time": "2024-05-20T15:29:45.000Z",
              "description": "rejected", "to": "+14385550123", "errorCode": code,
              "message": {"id": "1716219585000abc", "owner": "+15145550100",
                          "applicationId": "app", "time": "2024-05-20T15:29:45.000Z",
                          "segmentCount": 1, "direction": "out", "to": ["+14385550123"],
                          "from": "+15145550100", "text": "", "tag": "msg_1"}}]
    return request(json.dumps(event).encode(), "application/json")


def vonage(code: str) -> WebhookRequest:
    fields = {"msisdn": "14385550123", "to": "15145550100", "network-code": "302720",
              "messageId": "0A0000000123ABCD1", "price": "0.0059", "status": "failed",
              "scts": "2405201529", "err-code": code, "message-timestamp": "2024-05-20 15:29:45"}
    return request(urlencode(fields).encode(), "application/x-www-form-urlencoded")


def twilio(code: str) -> WebhookRequest:
    fields = {"MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "MessageStatus": "undelivered",
              "ErrorCode": code, "AccountSid": "ACxx", "From": "+15145550100",
              "To": "+14385550123", "ApiVersion": "2010-04-01"}
    return request(urlencode(fields).encode(), "application/x-www-form-urlencoded")


def telnyx(fixture: str) -> WebhookRequest:
    body = (Path(__file__).parent / "telnyx" / "fixtures" / fixture).read_bytes()
    return request(body, "application/json")


@pytest.mark.parametrize(("key", "settings", "webhook", "opted_out"), [
    ("telnyx", {}, telnyx("status_sending_failed_40300.json"), True),
    ("telnyx", {}, telnyx("status_delivery_failed_40008.json"), False),
    ("twilio", {}, twilio("21610"), True),
    ("twilio", {}, twilio("30006"), False),
    ("bandwidth", {"callback_username": "u", "callback_password": "p"}, bandwidth(4775), True),
    ("bandwidth", {"callback_username": "u", "callback_password": "p"}, bandwidth(4720), False),
    ("vonage", {}, vonage("9"), True),
    ("vonage", {}, vonage("6"), False),
])
def test_an_opt_out_receipt_is_flagged(key: str, settings: dict[str, str],
                                       webhook: WebhookRequest, opted_out: bool) -> None:
    cls = get_provider_class(key)
    base = {"bandwidth": {"account_id": "1", "application_id": "a", "username": "x",
                          "password": "y"},
            "vonage": {"api_key": "k", "api_secret": "s"},
            "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "t"},
            "telnyx": {"api_key": "KEY", "public_key": "A" * 43 + "="}}[key]
    provider = cls(cls.Config(**base, **settings))
    (update,) = provider.parse_status(webhook)
    assert update.status is MessageStatus.FAILED
    assert update.recipient_opted_out is opted_out
