"""Messages in Twilio's words: its form callbacks and its Message resource.

The Twilio-compatible face (api/twilio_face.py) answers with these shapes, and app webhooks
of format "twilio" and StatusCallbacks are posted in them, so that an app written for
Twilio reads them unchanged. Field names and values follow Twilio's documentation of the
Message resource and of its messaging webhooks (shared/providers/twilio.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from ..core.messages import Direction, Message, MessageStatus

API_VERSION = "2010-04-01"

# Twilio has no "sending" in callbacks of ours worth inventing: a message being handed to
# the carrier is "sending" in Twilio's resource too.
_STATUS = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENDING: "sending",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.FAILED: "failed",
    MessageStatus.RECEIVED: "received",
}


def twilio_date(dt: datetime | None) -> str | None:
    """Twilio's resource dates: RFC 2822 in UTC, such as ``Thu, 26 Nov 2026 10:22:35 +0000``."""
    if dt is None:
        return None
    return format_datetime(dt.astimezone(UTC).replace(microsecond=0))


def twilio_status(message: Message) -> str:
    """The message's status as Twilio names it; a failure after the carrier took the message
    (a receipt saying so) is "undelivered", as Twilio's is."""
    if message.status is MessageStatus.FAILED and message.carrier_message_id:
        return "undelivered"
    return _STATUS.get(message.status, message.status.value)


def _media_params(message: Message) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    urls = [m for m in message.media if m.url]
    for index, media in enumerate(urls):
        out.append((f"MediaUrl{index}", media.url or ""))
        out.append((f"MediaContentType{index}", media.content_type))
    return out


def inbound_params(message: Message, account_sid: str) -> list[tuple[str, str]]:
    """The form Twilio posts to an app when a message comes in."""
    media = _media_params(message)
    return [
        ("MessageSid", message.id),
        ("SmsMessageSid", message.id),
        ("SmsSid", message.id),
        ("AccountSid", account_sid),
        ("MessagingServiceSid", message.connection),
        ("From", message.from_number),
        ("To", message.to_number),
        ("Body", message.text),
        ("NumMedia", str(len(media) // 2)),
        ("NumSegments", str(message.segments)),
        ("SmsStatus", "received"),
        ("ApiVersion", API_VERSION),
        *media,
    ]


def status_params(message: Message, account_sid: str) -> list[tuple[str, str]]:
    """The form Twilio posts to a message's StatusCallback when its status changes."""
    status = twilio_status(message)
    params = [
        ("MessageSid", message.id),
        ("SmsSid", message.id),
        ("AccountSid", account_sid),
        ("MessagingServiceSid", message.connection),
        ("From", message.from_number),
        ("To", message.to_number),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", API_VERSION),
    ]
    if message.error_code:
        params.append(("ErrorCode", message.error_code))
    return params


def message_resource(message: Message, account_sid: str) -> dict[str, Any]:
    """Twilio's Message resource (the JSON of ``/2010-04-01/.../Messages/{sid}.json``)."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.id}.json"
    error_code: int | None = None
    if message.error_code and message.error_code.isdigit():
        error_code = int(message.error_code)
    sent = message.status in (MessageStatus.SENT, MessageStatus.DELIVERED) or (
        message.status is MessageStatus.FAILED and message.carrier_message_id is not None)
    return {
        "sid": message.id,
        "account_sid": account_sid,
        "messaging_service_sid": message.connection,
        "to": message.to_number,
        "from": message.from_number,
        "body": message.text,
        "status": twilio_status(message),
        "direction": "inbound" if message.direction is Direction.INBOUND else "outbound-api",
        "num_segments": str(message.segments),
        "num_media": str(len(message.media)),
        "date_created": twilio_date(message.created_at),
        "date_updated": twilio_date(message.updated_at),
        "date_sent": twilio_date(message.updated_at) if sent else None,
        "error_code": error_code,
        "error_message": message.error_reason if message.error_code else None,
        "price": None,
        "price_unit": "USD",
        "api_version": API_VERSION,
        "uri": uri,
        "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
    }
