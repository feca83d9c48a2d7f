"""VoIP Number: SMS out through the API behind the ``voipnumber`` SDK, inbound by JSON POST.

Carrier facts and how sure they are: shared/providers/voipnumber.md, from VoIP Number's
"API Reference > SMS/MMS" page (docs.voipnumber.net/api-reference/sms-mms) and the npm
README of ``voipnumber``. VoIP Number documents only its Node SDK,
``require('voipnumber')(accountId, apiToken).sms.send(from, to, text)``, and not the HTTP
request behind it; the SDK's source could not be obtained (the npm registry answers 404 for
it and no public copy was found). So the request below is our reading, and its path is the
``send_path`` setting::

    POST {base}{send_path}        (default https://api.voipnumber.net/sms/send)
    Content-Type: application/json
    {"accountId": "...", "apiToken": "...", "from": "+447700900456",
     "to": "+447700900123", "body": "Thank you"}

Why this reading:

- The credentials travel as fields of the request: the server itself reports
  ``USER_ACCOUNT_MISSING`` ("AccountId not set or empty") and ``API_TOKEN_MISSING`` ("API
  token not set or empty") one by one, which fits values it reads from each request and not
  an HTTP auth header (a missing header would be a plain 401). They keep the names the
  docs and the SDK give them.
- JSON, POST: VoIP Number speaks JSON everywhere it is documented (the answers, the
  webhooks), and ``MESSAGE_INVALID`` ("Coding syntax error") fits a body that does not parse.
- ``/sms/send`` mirrors the SDK call ``sms.send``; no version segment is documented.
- ``body``: the carrier's own name for the text, in the send answer and in the webhook.

Only the path is a setting: method and credential placement follow from the documented
behaviour above, while a path cannot be inferred at all. A user who captures the SDK's real
request and finds another path sets ``send_path``; any other difference needs a code change.

The answer, as the docs print it (the SDK seems to wrap the server's ``{status, result}`` in
one of its own, so one or two levels of wrapper are read)::

    {"status": "OK", "result": {"status": "OK", "result": {"status": "queued",
     "body": "Thank you", "timestamp_s": 1716193717, "created": "20 May 2024 08:28:37",
     "id": "feefcc83-d6ae-4580-b4dc-6ee16b37ff04"}}}
    {"status": "Error", "result": {"error_code": "USER_NOT_FOUND", "error": "User not found"}}

The inner ``id`` (a Messaging Data Record id) is the carrier message id. Every documented
error code is final. Which HTTP status carries an error answer is not documented; the code
in the body decides whatever the status, and 429/5xx without such a body back off.

Inbound (per number: app.voipnumber.net > Numbers > SMS Webhook URL)::

    POST <inbound url>   Content-Type: application/json   Host: api.voipnumber.net
    {"status": "received", "from": "+447700900123", "to": "+447700900456", "type": "sms",
     "body": "text received in SMS", "mdr_timestamp_s": 1716204585,
     "mdr_created": "20 May 2024 11:29:45", "mdr_id": "da84a7b1-1a80-4e96-885e-e719d5ec909c"}

``type`` is ``sms`` or ``mms``; how an MMS's media is delivered is not documented (no media
field is shown), so an MMS is stored with its text and without media. VoIP Number signs
nothing. Its docs suggest checking ``Host: api.voipnumber.net``, which anyone can forge:
the secret token in the webhook URL is the guard. No delivery receipt is sent: the status
is only shown on the portal's Messaging page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import InvalidPhoneNumber, MalformedWebhook, ProviderError
from ...core.messages import InboundMessage, MessageStatus, OutboundMessage, utcnow
from ...core.phone import NumberFormat, to_e164
from ..base import UNSIGNED, Capabilities, Provider, ProviderConfig, SendResult, WebhookRequest
from ..http import CarrierResponse, carrier_request
from ..numbers import inbound_number

DEFAULT_SEND_PATH = "/sms/send"

# The "Error" codes of the SMS/MMS API reference; none can pass on a second try.
FINAL_ERROR_CODES = frozenset({
    "USER_ACCOUNT_MISSING",  # accountId not set or empty
    "API_TOKEN_MISSING",  # API token not set or empty
    "USER_NOT_FOUND",  # no user with this accountId
    "API_TOKEN_INVALID",  # the token does not match the accountId
    "NUMBER_NOT_FOUND",  # the from number does not exist on VoIP Number
    "NUMBER_OWNERSHIP",  # the from number belongs to another account
    "MESSAGE_INVALID",  # "coding syntax error": a request the server cannot read
})

# Statuses that say the request reached no send endpoint: most likely a wrong send_path.
_NO_ENDPOINT_STATUSES = frozenset({404, 405})
# The docs' answer has two wrappers; one more is tolerated before we stop reading.
_MAX_WRAPPERS = 3


class VoipNumberConfig(ProviderConfig):
    """Credentials of a VoIP Number account, and the unconfirmed send path."""

    account_id: str = Field(
        min_length=1, description="accountId from app.voipnumber.net > Settings")
    api_token: SecretStr = Field(
        description="apiToken from app.voipnumber.net > Settings (GENERATE makes a new one)")
    send_path: str = Field(
        DEFAULT_SEND_PATH, pattern=r"^/[^\s?#]*$",
        description="path of the send request on base_url; VoIP Number does not publish it,"
                    " so change it if the SDK's real request uses another")


class VoipNumberProvider(Provider[VoipNumberConfig]):
    """VoIP Number numbers (SMS out; SMS and the text of MMS in)."""

    key: ClassVar[str] = "voipnumber"
    name: ClassVar[str] = "VoIP Number"
    Config = VoipNumberConfig
    capabilities = Capabilities(
        sms=True,
        mms=False,  # sms.send takes from, to and text only
        # Not documented; 1600 is the usual concatenation ceiling.
        max_text_length=1600,
        number_format=NumberFormat.E164,  # every example is +447...
        signature=UNSIGNED,  # the Host header is no proof; the URL token guards
        delivery_receipts=False,  # status shown on the portal's Messaging page only
    )
    default_base_url: ClassVar[str] = "https://api.voipnumber.net"

    @property
    def _token(self) -> str:
        return self.config.api_token.get_secret_value()

    # ---------------------------------------------------------------- sending

    def send_body(self, message: OutboundMessage) -> dict[str, str]:
        """The JSON object that sends ``message``."""
        if message.media:
            raise ProviderError("VoIP Number's API sends text only (no MMS media)",
                                retryable=False, code="no_mms")
        return {"accountId": self.config.account_id, "apiToken": self._token,
                "from": message.from_number, "to": message.to_number, "body": message.text}

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one SMS; the MDR id inside the answer's wrappers is the carrier message id."""
        response = await carrier_request(
            http, "POST", self.base_url + self.config.send_path, label="VoIP Number",
            timeout=self.config.timeout_seconds, secrets=[self._token],
            json=self.send_body(message), headers={"Accept": "application/json"},
        )
        verdict, content = _read_answer(response.json())
        if verdict == "error":
            raise _refusal(response, content)
        if not 200 <= response.status < 300:
            raise _http_refusal(response, self.config.send_path)
        message_id = content.get("id")
        if not isinstance(message_id, str) or not message_id.strip():
            # VoIP Number may have queued it: a retry could text the recipient twice.
            raise ProviderError("VoIP Number answered without the message's id",
                                retryable=False, code="no_id")
        return SendResult(message_id.strip(), MessageStatus.SENT)

    # ---------------------------------------------------------------- webhooks

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS or MMS (its text; MMS media delivery is undocumented)."""
        payload = request.json()
        if not isinstance(payload, dict):
            raise MalformedWebhook("VoIP Number webhook body must be a JSON object")
        status = payload.get("status")
        if status is not None and status != "received":
            raise MalformedWebhook(
                f"VoIP Number webhook 'status' is {status!r}, expected 'received'")
        kind = payload.get("type")
        if kind is not None and kind not in ("sms", "mms"):
            raise MalformedWebhook(f"VoIP Number webhook 'type' is {kind!r}, not sms or mms")
        body = payload.get("body")
        if body is not None and not isinstance(body, str):
            raise MalformedWebhook("VoIP Number webhook 'body' must be a string")
        return [InboundMessage(
            carrier_message_id=_required(payload, "mdr_id"),
            from_number=_sender(_required(payload, "from")),
            to_number=_our_number(_required(payload, "to")),
            text=body or "",
            received_at=_received_at(payload.get("mdr_timestamp_s")),
        )]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the VoIP Number app."""
        return (
            f"In app.voipnumber.net > Numbers, open each number that should receive texts and"
            f" set its SMS Webhook to {inbound_url}. VoIP Number sends no delivery receipts,"
            f" so {status_url} stays unused."
        )


# -------------------------------------------------------------------- helpers


def _is_wrapper(node: object) -> bool:
    return isinstance(node, dict) and "result" in node and str(
        node.get("status", "")).lower() in ("ok", "error")


def _read_answer(answer: Any) -> tuple[str, dict[str, Any]]:
    """("error", detail), ("ok", message record) or ("unknown", {}) from the wrappers."""
    node = answer
    for _ in range(_MAX_WRAPPERS):
        if not _is_wrapper(node):
            break
        result = node["result"]
        if str(node["status"]).lower() == "error":
            return "error", result if isinstance(result, dict) else {}
        if not isinstance(result, dict):
            break
        if not _is_wrapper(result):
            return "ok", result
        node = result
    return "unknown", {}


def _refusal(response: CarrierResponse, detail: dict[str, Any]) -> ProviderError:
    """A ``status: Error`` answer: a documented code is final whatever the HTTP status."""
    raw_code = detail.get("error_code")
    code = str(raw_code) if raw_code not in (None, "") else None
    text = detail.get("error")
    reason = f"VoIP Number: {text if isinstance(text, str) and text else code or 'error'}"
    if code in FINAL_ERROR_CODES:
        return response.error(reason, code=code, retryable=False)
    # An undocumented code: the HTTP status decides (one carried by a 200 is final).
    return response.error(reason, code=code)


def _http_refusal(response: CarrierResponse, send_path: str) -> ProviderError:
    """A non-2xx answer without VoIP Number's error body: the HTTP status decides."""
    if response.status in _NO_ENDPOINT_STATUSES:
        return response.error(
            f"VoIP Number: HTTP {response.status} for {send_path}; the send path is not"
            " published by VoIP Number, so check the connection's send_path setting")
    return response.error()


def _required(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"VoIP Number webhook is missing '{key}'")
    return value.strip()


def _our_number(raw: str) -> str:
    """``to``: one of the account's numbers, E.164 with '+'."""
    try:
        return to_e164(raw, field="to")
    except InvalidPhoneNumber as exc:
        raise MalformedWebhook(f"VoIP Number webhook 'to' {exc.reason}") from None


def _sender(raw: str) -> str:
    """``from`` in E.164; a short code or an alphanumeric sender id is kept as given."""
    # A bank's one-time codes come from a short code or a name such as "HSBC".
    return inbound_number(raw, carrier="VoIP Number", field="from")


def _received_at(seconds: object) -> datetime:
    """When VoIP Number recorded the message (``mdr_timestamp_s``), else now."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    # The timestamp is a nicety: a message is not refused for an odd one.
    return utcnow()
