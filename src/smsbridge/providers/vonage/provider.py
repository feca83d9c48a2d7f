"""Vonage (Nexmo) SMS API: send with ``/sms/json``, receive its GET/POST webhooks.

Carrier facts and how sure they are: shared/providers/vonage.md.

Send (form-encoded; numbers are digits without '+')::

    POST {base}/sms/json
    api_key=...&api_secret=...&from=15145550100&to=14385550123&text=Hi&type=text
        &callback=<status url>&status-report-req=1&client-ref=<our id>
    -> 200 {"message-count": "1", "messages": [{"message-id": "...", "status": "0", ...}]}
       (HTTP 200 even when refused: a part's "status" other than "0" is its error code)

Inbound webhook (GET query, POST form or POST JSON, as set in the dashboard)::

    msisdn=14385550123&to=15145550100&messageId=...&text=Hi&type=text&keyword=HI
        &message-timestamp=2024-05-20+11:29:45  (+ concat, concat-ref/-total/-part; sig...)

Delivery receipt (the ``callback`` given per message)::

    msisdn=14385550123&to=15145550100&messageId=...&status=delivered&err-code=0&...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import InvalidPhoneNumber, MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import InboundMessage, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat, format_number, to_e164
from ...core.segments import count_segments
from ..base import Capabilities, Provider, ProviderConfig, SendResult, WebhookRequest
from ..http import CarrierResponse, carrier_request
from .signature import signature_matches

# The SMS API's per-message status codes ("SMS API error codes"). 1, 5 and 10 pass later;
# every other refusal is final (an unroutable or barred number never becomes valid).
SEND_ERRORS: dict[str, str] = {
    "1": "throttled: sending faster than the account's rate",
    "2": "missing parameters",
    "3": "invalid parameters",
    "4": "invalid credentials (api_key / api_secret)",
    "5": "internal error at Vonage",
    "6": "invalid message: the destination prefix is not routable",
    "7": "number barred: the recipient is blacklisted or opted out",
    "8": "partner account barred",
    "9": "partner quota exceeded: not enough credit",
    "10": "too many existing binds",
    "11": "account not enabled for HTTP",
    "12": "message too long",
    "14": "invalid signature",
    "15": "invalid sender address",
    "22": "invalid network code",
    "23": "invalid callback URL",
    "29": "non-whitelisted destination (trial account)",
    "32": "signature and API secret disallowed",
    "33": "number de-activated",
}
RETRYABLE_SEND_CODES = frozenset({"1", "5", "10"})

# Delivery receipt statuses, mapped onto ours; "accepted"/"buffered" are on their way.
RECEIPT_STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.SENT,
    "buffered": MessageStatus.SENT,
    "unknown": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "expired": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
}

# The err-code of a failed delivery receipt (Vonage support, "SMS Delivery Error Codes").
RECEIPT_ERRORS: dict[str, str] = {
    "1": "unknown: not delivered, no cause could be determined",
    "2": "absent subscriber (temporary): the handset was unavailable",
    "3": "absent subscriber (permanent): the number is no longer active",
    "4": "call barred by the user",
    "5": "portability error",
    "6": "anti-spam rejection by the carrier",
    "7": "handset busy",
    "8": "network error",
    "9": "illegal number: the recipient asked not to receive messages from this service",
    "10": "illegal message (e.g. a wrong encoding flag)",
    "11": "unroutable",
    "12": "destination unreachable",
    "13": "subscriber age restriction",
    "14": "number blocked by the carrier",
}

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]


class VonageConfig(ProviderConfig):
    """Credentials of a Vonage account (SMS API)."""

    api_key: str = Field(min_length=1, description="API key from the Vonage dashboard")
    api_secret: SecretStr = Field(description="API secret from the Vonage dashboard")
    signature_secret: SecretStr | None = Field(
        None, description="signature secret (Settings -> API settings): when set, every"
        " webhook must carry a valid sig; leave empty if signed webhooks are not enabled")
    signature_method: SignatureMethod = Field(
        "md5hash", description="the signature method chosen in the dashboard: md5hash,"
        " md5, sha1, sha256 or sha512 (the last four are HMAC)")


class VonageProvider(Provider[VonageConfig]):
    """Vonage SMS API (SMS only; the SMS API carries no MMS)."""

    key: ClassVar[str] = "vonage"
    name: ClassVar[str] = "Vonage"
    Config = VonageConfig
    capabilities = Capabilities(
        sms=True, mms=False,
        # Unconfirmed: Vonage splits long texts itself; 1600 is the common ceiling.
        max_text_length=1600,
        number_format=NumberFormat.DIGITS, signature="vonage-sig", delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://rest.nexmo.com"

    @property
    def _secret(self) -> str:
        return self.config.api_secret.get_secret_value()

    # --- sending -------------------------------------------------------------------------

    def send_form(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """The form fields of the /sms/json request for ``message``."""
        if message.media:
            raise ProviderError("Vonage's SMS API sends no media (MMS)", retryable=False,
                                code="no_mms")
        unicode = count_segments(message.text).encoding != "GSM-7"
        form = [("api_key", self.config.api_key), ("api_secret", self._secret),
                ("from", _wire_number(message.from_number)),
                ("to", format_number(message.to_number, NumberFormat.DIGITS)),
                ("text", message.text), ("type", "unicode" if unicode else "text"),
                ("client-ref", message.id)]
        if message.status_callback_url:
            form += [("callback", message.status_callback_url), ("status-report-req", "1")]
        return form

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Send one message; Vonage answers 200 with one entry per part."""
        response = await carrier_request(
            http, "POST", f"{self.base_url}/sms/json", label="Vonage",
            timeout=self.config.timeout_seconds, secrets=[self._secret],
            data=self.send_form(message), headers={"Accept": "application/json"},
        )
        if response.status != 200:
            raise response.error(f"Vonage answered HTTP {response.status}")
        return _send_result(response)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check ``sig`` when a signature secret is configured; without one, accept.

        Vonage signs only when the account's signed webhooks are on; with no
        ``signature_secret`` the connection's URL token is all that guards it.
        """
        secret = self.config.signature_secret
        if secret is None or not secret.get_secret_value():
            return
        params = _webhook_params(request)
        given = params.get("sig")
        if not given:
            raise WebhookRejected("the Vonage webhook carries no sig parameter, and this"
                                  " connection has a signature_secret")
        if not signature_matches(secret.get_secret_value(), self.config.signature_method,
                                 params, given):
            raise WebhookRejected(
                f"the Vonage sig does not match ({self.config.signature_method}); are"
                " signature_secret and signature_method the dashboard's?")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS; each part of a long one is a message of its own."""
        params = _webhook_params(request)
        message_id = _required(params, "messageId")
        sender, recipient = _number(params, "msisdn"), _number(params, "to")
        kind = params.get("type", "text").lower()
        if kind not in ("text", "unicode", "binary"):
            raise MalformedWebhook(f"Vonage inbound type {kind!r} is not text, unicode or binary")
        # A binary message (a WAP push, a ringtone) has no text to show; it is still stored.
        text = "" if kind == "binary" else params.get("text", "")
        if params.get("concat", "").lower() == "true":
            # Vonage leaves joining the parts of a long text to the receiver. Joining them
            # here would mean answering 200 for parts held only in memory, which a restart
            # loses; until the store can hold parts, each is stored as it comes.
            _required(params, "concat-ref")
            total, part = _count(params, "concat-total"), _count(params, "concat-part")
            if part > total:
                raise MalformedWebhook(f"Vonage concat-part {part} is over concat-total {total}")
        return [InboundMessage(message_id, sender, recipient, text)]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a delivery receipt."""
        params = _webhook_params(request)
        message_id = _required(params, "messageId")
        raw = _required(params, "status")
        status = RECEIPT_STATUSES.get(raw.lower())
        if status is None:
            raise MalformedWebhook(f"Vonage receipt status {raw!r} is not one we know")
        code = params.get("err-code", "").strip()
        if status is not MessageStatus.FAILED or code in ("", "0"):
            return [StatusUpdate(message_id, status)]
        reason = RECEIPT_ERRORS.get(code, f"Vonage delivery error {code}")
        return [StatusUpdate(message_id, status, code, f"{raw.lower()}: {reason}")]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Vonage dashboard."""
        return (
            f"In the Vonage dashboard, under Settings -> SMS settings choose the SMS API,"
            f" and set the inbound webhook of your numbers (Numbers -> Your numbers, or the"
            f" account default) to {inbound_url}, method POST. Delivery receipts need no"
            f" setup: smsbridge passes {status_url} as the callback of every message."
        )


def _send_result(response: CarrierResponse) -> SendResult:
    """The SendResult of a 200 answer, or the ProviderError of its first refused part."""
    answer = response.json()
    parts = answer.get("messages") if isinstance(answer, dict) else None
    if not (isinstance(parts, list) and parts and all(isinstance(p, dict) for p in parts)):
        # Vonage may have taken it: a retry could text the recipient twice.
        raise ProviderError("Vonage answered 200 without a messages list", retryable=False,
                            code="no_messages")
    ids = [str(p["message-id"]) for p in parts
           if str(p.get("status")) == "0" and p.get("message-id")]
    refused = next((p for p in parts if str(p.get("status")) != "0"), None)
    if refused is None and len(ids) == len(parts):
        return SendResult(ids[0], MessageStatus.SENT, len(parts), tuple(ids[1:]))
    if refused is None:
        raise ProviderError("Vonage accepted the message but sent no message-id",
                            retryable=False, code="no_message_id")
    code = str(refused.get("status"))
    text = refused.get("error-text") or SEND_ERRORS.get(code, "unknown error")
    if ids:
        # Some parts are on their way: a retry would send them again.
        raise response.error(
            f"Vonage accepted {len(ids)} of {len(parts)} parts, then refused one: {text}",
            code=code, retryable=False)
    raise response.error(f"Vonage: {text}", code=code, retryable=code in RETRYABLE_SEND_CODES)


def _wire_number(number: str) -> str:
    """An E.164 sender as digits; an alphanumeric sender id as it is."""
    return number[1:] if number.startswith("+") else number


def _webhook_params(request: WebhookRequest) -> dict[str, str]:
    """A webhook's parameters: the query of a GET, the form or JSON body of a POST."""
    if request.method.upper() == "GET":
        pairs: Sequence[tuple[str, str]] = request.query
    elif request.content_type == "application/json":
        body: Any = request.json()
        if not isinstance(body, dict):
            raise MalformedWebhook("Vonage JSON webhook is not an object")
        pairs = [(k, _json_value(v)) for k, v in body.items()]
    else:
        pairs = request.form()
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def _json_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise MalformedWebhook(f"Vonage webhook is missing {name}")
    return value


def _number(params: dict[str, str], name: str) -> str:
    """A number in E.164; Vonage writes digits without '+'. Short codes and names stay."""
    value = _required(params, name)
    candidate = "+" + value if value.isdigit() and len(value) > 8 else value
    try:
        return to_e164(candidate, field=name)
    except InvalidPhoneNumber:
        if value.isdigit() and len(value) <= 8:
            return value  # a short code
        if value.isalnum() and len(value) <= 11:
            return value  # an alphanumeric sender id
        raise MalformedWebhook(f"Vonage {name} {value!r} is not a phone number") from None


def _count(params: dict[str, str], name: str) -> int:
    raw = _required(params, name)
    if not (raw.isdigit() and 1 <= int(raw) <= 255):
        raise MalformedWebhook(f"Vonage {name} {raw!r} is not a part number from 1 to 255")
    return int(raw)
