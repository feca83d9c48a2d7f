"""Plivo Voice: the Make a Call request, the Speak XML its answer_url serves, its hangup callback.

Carrier facts and how sure they are: docs/carriers/plivo.md ("Voice calls").

Make a call (Plivo answers 201)::

    POST {base}/v1/Account/{auth_id}/Call/        (Basic auth: auth_id, auth_token)
    {"from": "15145550100", "to": "14385550123", "answer_url": "<answer url>",
     "answer_method": "POST", "hangup_url": "<status url>", "hangup_method": "POST"}
    -> 201 {"api_id": "...", "message": "call fired", "request_uuid": "..."}

When the callee answers, Plivo POSTs (V3-signed) to answer_url and plays the XML it gets::

    <Response><Speak voice="WOMAN" language="en-US" loop="2">text</Speak></Response>

When the call ends it POSTs (V3-signed) the outcome to hangup_url::

    CallUUID=...&RequestUUID=...&ALegRequestUUID=...&Direction=outbound&CallStatus=busy
        &HangupCause=USER_BUSY&Duration=0&BillDuration=0&From=15145550100&To=14385550123...
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from ...core.errors import MalformedWebhook, ProviderError
from ...core.messages import MessageStatus, OutboundCall, StatusUpdate
from ..base import first

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'

# CallStatus of Plivo's voice callbacks (the XML-request docs: ringing, in-progress, completed;
# for outbound calls also busy, failed, timeout, no-answer), mapped onto a call's life. Plivo's
# older docs spell a call cancelled before the answer "cancel"; both spellings are read.
CALL_STATUSES: dict[str, tuple[MessageStatus, str | None]] = {
    "ringing": (MessageStatus.SENT, None),
    "in-progress": (MessageStatus.SENT, None),
    "completed": (MessageStatus.DELIVERED, None),
    "busy": (MessageStatus.FAILED, "busy"),
    "no-answer": (MessageStatus.FAILED, "no-answer"),
    "timeout": (MessageStatus.FAILED, "no-answer"),
    "failed": (MessageStatus.FAILED, "failed"),
    "cancel": (MessageStatus.FAILED, "canceled"),
    "canceled": (MessageStatus.FAILED, "canceled"),
    "cancelled": (MessageStatus.FAILED, "canceled"),
}

# The id Plivo gave the call in its 201 answer. The hangup callback of an API call carries it
# as RequestUUID; the XML-request docs name it ALegRequestUUID. CallUUID is a different id.
_REQUEST_ID_FIELDS = ("RequestUUID", "ALegRequestUUID")


def wire_number(number: str) -> str:
    """An E.164 number as Plivo's Call API writes it: country code and digits, no '+'."""
    return number[1:] if number.startswith("+") else number


def call_body(call: OutboundCall) -> dict[str, Any]:
    """The JSON body of the Make a Call request for ``call``."""
    if not call.answer_url:
        # Plivo fetches what to say from answer_url; without one the callee hears nothing.
        raise ProviderError("Plivo needs an answer URL to fetch the call's words from; the"
                            " gateway gave none (is its public URL set?)", retryable=False,
                            code="no_answer_url")
    body: dict[str, Any] = {"from": wire_number(call.from_number),
                            "to": wire_number(call.to_number),
                            "answer_url": call.answer_url, "answer_method": "POST"}
    if call.status_callback_url:
        body["hangup_url"] = call.status_callback_url
        body["hangup_method"] = "POST"
    return body


def speak_xml(call: OutboundCall) -> bytes:
    """The Plivo XML that speaks ``call.say`` ``call.repeat`` times, escaped by ElementTree."""
    attributes = {}
    if call.voice:
        attributes["voice"] = call.voice
    if call.language:
        attributes["language"] = call.language
    attributes["loop"] = str(call.repeat)
    response = ET.Element("Response")
    ET.SubElement(response, "Speak", attributes).text = call.say
    return XML_DECLARATION + ET.tostring(response, encoding="unicode").encode("utf-8")


def is_call_callback(fields: Sequence[tuple[str, str]]) -> bool:
    """Whether a status callback is about a call (a message receipt carries MessageUUID)."""
    return first(fields, "MessageUUID") is None and (
        first(fields, "CallUUID") is not None or first(fields, "CallStatus") is not None)


def parse_call_status(fields: Sequence[tuple[str, str]]) -> StatusUpdate:
    """The StatusUpdate of a ring, answer or hangup callback of a call we placed."""
    request_uuid = next((value for name in _REQUEST_ID_FIELDS
                         if (value := (first(fields, name) or "").strip())), None)
    if request_uuid is None:
        raise MalformedWebhook("Plivo call callback is missing RequestUUID (and"
                               " ALegRequestUUID): it is not about a call placed by the API")
    raw = (first(fields, "CallStatus") or "").strip()
    if not raw:
        raise MalformedWebhook("Plivo call callback is missing CallStatus")
    known = CALL_STATUSES.get(raw.lower())
    if known is None:
        raise MalformedWebhook(f"Plivo CallStatus {raw!r} is not a status of an outbound call")
    status, answer = known
    if answer is None:
        return StatusUpdate(request_uuid, status)
    cause = first(fields, "HangupCauseName") or first(fields, "HangupCause")
    reason = f"{raw.lower()} ({cause})" if cause else raw.lower()
    return StatusUpdate(request_uuid, status, answer, reason)
