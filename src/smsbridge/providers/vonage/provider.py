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

Voice-call alerts go through the Voice API with a Vonage application's key: ``voice.py``
(the call and its events) and ``tokens.py`` (its JWTs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator, model_validator

from ...core.errors import MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import (
    InboundMessage,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ...core.phone import NumberFormat, format_number
from ...core.segments import count_segments
from ..base import (
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    SendResult,
    WebhookRequest,
    header,
)
from ..http import CarrierResponse, carrier_request
from ..numbers import inbound_number
from .account import read_balance, sms_numbers
from .signature import signature_matches
from .tokens import application_token, load_private_key, webhook_claims
from .voice import call_body, is_call_event, parse_call_event

# The Voice API lives on another host than the SMS API (a configured base_url serves both).
VOICE_BASE_URL = "https://api.nexmo.com"
VOICE_KEYS = ("application_id", "private_key")

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
# "Illegal number": the recipient asked not to receive messages from this sender (Vonage,
# "Messaging Opted-out Numbers": the send succeeds, the receipt carries err-code 9).
RECEIPT_OPTED_OUT_CODES = frozenset({"9"})

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
    application_id: str | None = Field(
        None, min_length=1, description="voice calls: the id of a Vonage application with"
        " Voice enabled (Applications in the dashboard); leave empty to send texts only")
    private_key: SecretStr | None = Field(
        None, description="voice calls: that application's private key, the PEM text of the"
        " private.key file the dashboard downloads")

    @field_validator("private_key")
    @classmethod
    def _private_key_is_rsa_pem(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                load_private_key(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"private_key {exc}") from None
        return value

    @model_validator(mode="after")
    def _voice_keys_come_together(self) -> VonageConfig:
        if (self.application_id is None) != (self.private_key is None):
            raise ValueError("application_id and private_key go together: set both to place"
                             " voice calls, or neither")
        return self

    @property
    def voice_ready(self) -> bool:
        """Whether the keys the Voice API needs are set."""
        return self.application_id is not None and self.private_key is not None


class VonageProvider(Provider[VonageConfig]):
    """Vonage SMS API (SMS only; the SMS API carries no MMS), and Voice API calls."""

    key: ClassVar[str] = "vonage"
    name: ClassVar[str] = "Vonage"
    Config = VonageConfig
    capabilities = Capabilities(
        sms=True, mms=False,
        # Unconfirmed: Vonage splits long texts itself; 1600 is the common ceiling.
        max_text_length=1600,
        number_format=NumberFormat.DIGITS, signature="vonage-sig", delivery_receipts=True,
        voice=True,
    )
    default_base_url: ClassVar[str] = "https://rest.nexmo.com"

    def __init__(self, config: VonageConfig) -> None:
        super().__init__(config)
        if not config.voice_ready:
            # The gateway reads a connection's capabilities from its provider: a call to an
            # account without a Voice application is refused before it is queued.
            self.capabilities = replace(VonageProvider.capabilities, voice=False)

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

    # --- voice calls ---------------------------------------------------------------------

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Create a call that speaks ``call.say``; Vonage answers the call's uuid."""
        config = self.config
        if config.application_id is None or config.private_key is None:
            raise ProviderError(
                "Vonage places calls through a Voice application: set application_id and"
                " private_key in this connection's settings", retryable=False,
                code="calls_unsupported")
        token = application_token(config.application_id,
                                  load_private_key(config.private_key.get_secret_value()),
                                  time.time())
        response = await carrier_request(
            http, "POST", f"{(config.base_url or VOICE_BASE_URL).rstrip('/')}/v1/calls",
            label="Vonage Voice", timeout=config.timeout_seconds, secrets=[token],
            json=call_body(call),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        if response.status not in (200, 201):
            raise _voice_error(response)
        answer = response.json()
        call_uuid = answer.get("uuid") if isinstance(answer, dict) else None
        if not (isinstance(call_uuid, str) and call_uuid):
            # Vonage may be dialling already: a retry could ring the callee twice.
            raise ProviderError("Vonage accepted the call but sent no uuid", retryable=False,
                                code="no_uuid")
        return SendResult(call_uuid, MessageStatus.SENT)

    # --- setup: the account's reads (account.py) ------------------------------------------

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Read the balance; the API key names the account."""
        await read_balance(self, http)
        return AccountInfo(self.config.api_key)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The owned numbers with the SMS feature."""
        return await sms_numbers(self, http)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check the signature when a signature secret is configured; without one, accept.

        SMS webhooks carry a ``sig`` parameter (when the account's signed webhooks are
        on); call events carry an HS256 JWT in ``Authorization``. With no
        ``signature_secret`` the connection's URL token is all that guards either.
        """
        secret = self.config.signature_secret
        if secret is None or not secret.get_secret_value():
            return
        bearer = _bearer_token(request)
        if bearer is not None:
            self._verify_token(request, bearer, secret.get_secret_value())
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

    def _verify_token(self, request: WebhookRequest, token: str, secret: str) -> None:
        """Check a call event's JWT: our signature secret, our API key, this very body."""
        try:
            claims = webhook_claims(token, secret, time.time())
        except ValueError as exc:
            raise WebhookRejected(f"Vonage call event refused: {exc}; is signature_secret the"
                                  " dashboard's?") from None
        api_key = claims.get("api_key")
        if api_key is not None and api_key != self.config.api_key:
            raise WebhookRejected("the Vonage call event was signed for another API key")
        payload_hash = claims.get("payload_hash")
        if payload_hash is not None and not _body_matches(request.body, str(payload_hash)):
            raise WebhookRejected("the Vonage call event's body is not the one its token signs"
                                  " (payload_hash)")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a delivery receipt, or the event of a call."""
        params = _webhook_params(request)
        if is_call_event(params):
            return parse_call_event(params)
        message_id = _required(params, "messageId")
        raw = _required(params, "status")
        status = RECEIPT_STATUSES.get(raw.lower())
        if status is None:
            raise MalformedWebhook(f"Vonage receipt status {raw!r} is not one we know")
        code = params.get("err-code", "").strip()
        if status is not MessageStatus.FAILED or code in ("", "0"):
            return [StatusUpdate(message_id, status)]
        reason = RECEIPT_ERRORS.get(code, f"Vonage delivery error {code}")
        return [StatusUpdate(message_id, status, code, f"{raw.lower()}: {reason}",
                             recipient_opted_out=code in RECEIPT_OPTED_OUT_CODES)]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Vonage dashboard."""
        return (
            f"In the Vonage dashboard, under Settings -> SMS settings choose the SMS API,"
            f" and set the inbound webhook of your numbers (Numbers -> Your numbers, or the"
            f" account default) to {inbound_url}, method POST. Delivery receipts need no"
            f" setup: smsbridge passes {status_url} as the callback of every message."
            f" Voice calls need an application with Voice enabled (Applications -> Create):"
            f" put its id in application_id and its private key in private_key; each call"
            f" names {status_url} as its event URL."
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


def _voice_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError of a Voice API answer that was not a success."""
    answer = response.json()
    if not isinstance(answer, dict) or not (answer.get("title") or answer.get("detail")):
        return response.error(f"Vonage Voice answered HTTP {response.status}")
    words = [str(answer[key]) for key in ("title", "detail") if answer.get(key)]
    return response.error("Vonage Voice: " + ": ".join(words))


def _bearer_token(request: WebhookRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    scheme, _, token = (header(request, "Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _body_matches(body: bytes, payload_hash: str) -> bool:
    """Whether ``payload_hash`` is the SHA-256 of the body Vonage sent.

    Vonage hashes the payload as compact JSON; the body as received is tried first, then
    its compact re-serialisation, so a body with other spacing still matches.
    """
    candidates = [body]
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        candidates.append(json.dumps(json.loads(body), separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8"))
    given = payload_hash.strip().lower().encode("utf-8", "replace")
    return any(hmac.compare_digest(hashlib.sha256(c).hexdigest().encode("ascii"), given)
               for c in candidates)


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
    return inbound_number(params.get(name), carrier="Vonage", field=name,
                          international_digits=True)


def _count(params: dict[str, str], name: str) -> int:
    raw = _required(params, name)
    if not (raw.isdigit() and 1 <= int(raw) <= 255):
        raise MalformedWebhook(f"Vonage {name} {raw!r} is not a part number from 1 to 255")
    return int(raw)
