"""Simwood (UK): SMS through the v3 API; inbound SMS and delivery reports by HTTP POST.

Carrier facts and how sure they are: shared/providers/simwood.md (the jambonz plug-in), and
Simwood's own API v3 reference (simwood/developer-site, docs/wholesale/api/v3.md: "Outbound
SMS", "Mobile Number Inbound SMS Configuration", "HTTP POST (Inbound Events)").

Send (HTTP Basic: API username, API key; numbers are digits with the country code)::

    POST {base}/v3/messaging/{account}/sms
    {"to": "447700900123", "from": "447700900456", "message": "Hi", "concat": 1,
     "report": "<status url>"}
    -> 200 [{"id": "02f150a0690171038624cc9d0e89207d"}]
       (asked with "extended": 1: {"success": true, "data": {"id": "...", "parts": 1, ...}})
    -> an error status; Simwood's other endpoints answer {"success": false, "errors": [...]}

``concat`` is the most parts Simwood may use; its default, 1, cuts a text at 160
characters, so it is set to the parts the text needs. ``from`` may also be an alphanumeric
sender id of up to 11 characters. The jambonz plug-in also sends ``"cc": []`` and
``"media": []``; Simwood documents neither (and carries no MMS), so they are left out.

Inbound SMS (the number's SMS configuration, mode ``http_json``)::

    POST <inbound url>  Content-Type: application/json
    {"app": "sms_inbound", "id": "si_422296075c882529362765a39aa75b19",
     "data": {"originator": "447700900321", "destination": "447700900123", "length": 12,
              "message": "Hello World.", "time": "2020-10-06 20:36:05"}}

The deprecated mode ``http`` posts the same object as the form field ``payload`` with
``app`` ``mvno_inbound_sms``; it is read too. Other ``app`` values (a fax, a report sent to
the wrong URL) are acknowledged and store nothing.

Delivery report (the ``report`` URL given with each send)::

    POST <status url>   payload={"app": "sms_send_status", "id": "<the send's id>",
                                 "data": {"dtime": "2024-05-20 11:29:45", "status": 11}}

Simwood retries each of these "until a HTTP response with a status code of 200 and a
non-zero length body is returned", so every reply here has a body. Simwood signs none of
them: the secret token in the webhook URL is what guards them.

Unconfirmed: the error bodies and statuses of the SMS endpoint (an HTTP 403 is read as
"this server's IP address may not be allowed to use the API"); whether a retried inbound
keeps its ``id``; the most parts ``concat`` allows; how ``time`` is zoned (it is not used).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import CredentialsRejected, MalformedWebhook, ProviderError
from ...core.messages import InboundMessage, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat, format_number
from ...core.segments import count_segments
from ..base import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
    first,
    read_account,
)
from ..http import CarrierResponse, basic_auth, carrier_request
from ..numbers import inbound_number

# The ``app`` of an inbound SMS: ``http_json`` mode, and the deprecated ``http`` mode.
INBOUND_APPS = frozenset({"sms_inbound", "mvno_inbound_sms"})
REPORT_APP = "sms_send_status"

# Delivery report ``status`` codes ("Outbound SMS Delivery Reports"), mapped onto ours.
# 18 is as close to a receipt as some networks give, but says nothing of the handset.
REPORT_STATUSES: dict[int, tuple[MessageStatus, str]] = {
    1: (MessageStatus.SENT, "received: queued at Simwood"),
    2: (MessageStatus.SENT, "submitted: the SMS has left Simwood"),
    11: (MessageStatus.DELIVERED, "delivered to the handset"),
    12: (MessageStatus.FAILED, "rejected: not delivered and will not be retried"),
    13: (MessageStatus.FAILED, "error: usually an invalid destination, sometimes a"
                               " disallowed sender"),
    14: (MessageStatus.SENT, "queued in transit: the phone is off or out of coverage"),
    18: (MessageStatus.SENT, "accepted by the SMSC (this network gives no delivery report)"),
    26: (MessageStatus.FAILED, "rejected by the SMSC and will not be retried"),
}

# Simwood's own numbers are British; an originator may come in national form (07...).
HOME_REGION = "GB"
_ACK = b"OK"


class SimwoodConfig(ProviderConfig):
    """Credentials of a Simwood account's API."""

    account: str = Field(
        min_length=1, max_length=20, pattern=r"^[A-Za-z0-9-]+$",
        description="Simwood account number (typically six digits, e.g. 930123); it is part"
                    " of every API path")
    username: str = Field(
        min_length=1, description="API username issued with the account (not the portal"
                                  " login)")
    api_key: SecretStr = Field(description="API key (the API password) for that username")


class SimwoodProvider(Provider[SimwoodConfig]):
    """Simwood mobile and OTT numbers (SMS only; the API carries no MMS)."""

    key: ClassVar[str] = "simwood"
    name: ClassVar[str] = "Simwood"
    Config = SimwoodConfig
    capabilities = Capabilities(
        sms=True,
        mms=False,
        # Unconfirmed: Simwood splits up to ``concat`` parts but documents no ceiling;
        # 1600 is the common concatenation limit.
        max_text_length=1600,
        number_format=NumberFormat.DIGITS,  # "in e164 format (e.g. 447700900123)"
        signature=UNSIGNED,  # Simwood signs neither inbound SMS nor delivery reports
        delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://api.simwood.com"

    @property
    def _api_key(self) -> str:
        return self.config.api_key.get_secret_value()

    @property
    def sms_url(self) -> str:
        """The account's send endpoint."""
        return f"{self.base_url}/v3/messaging/{self.config.account}/sms"

    # ---------------------------------------------------------------- sending

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON object that sends ``message``."""
        if message.media:
            raise ProviderError("Simwood's API sends SMS only; it carries no media (MMS)",
                                retryable=False, code="no_mms")
        body: dict[str, Any] = {
            "to": format_number(message.to_number, NumberFormat.DIGITS),
            # An E.164 sender loses its '+'; an alphanumeric sender id stays as it is.
            "from": format_number(message.from_number, NumberFormat.DIGITS),
            "message": message.text,
            "concat": count_segments(message.text).segments,
        }
        if message.status_callback_url:
            body["report"] = message.status_callback_url
        return body

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one SMS; Simwood answers 200 with the message's id."""
        body = self.send_body(message)
        response = await carrier_request(
            http, "POST", self.sms_url, label="Simwood", timeout=self.config.timeout_seconds,
            secrets=[self._api_key], json=body,
            headers={"Authorization": basic_auth(self.config.username, self._api_key),
                     "Accept": "application/json"},
        )
        if not 200 <= response.status < 300:
            raise self._send_error(response)
        answer = response.json()
        if isinstance(answer, dict) and answer.get("success") is False:
            raise self._send_error(response)
        message_id, parts = _accepted(answer)
        if message_id is None:
            # Simwood may have queued it: a retry could text the recipient twice.
            raise ProviderError("Simwood accepted the message but its answer carried no id",
                                retryable=False, code="no_id")
        return SendResult(message_id, MessageStatus.SENT, parts or body["concat"])

    def _send_error(self, response: CarrierResponse) -> ProviderError:
        """The ProviderError for a refusal; the HTTP status decides whether to retry."""
        detail = _error_detail(response.json())
        status = response.status
        if status == 401:
            reason = "Simwood refused the API username or API key (HTTP 401)"
        elif status == 403:
            reason = ("Simwood refused access (HTTP 403). Simwood may accept API calls only"
                      " from allowed IP addresses: check that this server's public address"
                      " is allowed on the account")
        elif status == 404:
            reason = (f"Simwood has no SMS endpoint for account {self.config.account!r}"
                      " (HTTP 404): check the account number")
        elif 200 <= status < 300:
            reason = "Simwood refused the message"
        else:
            reason = f"Simwood: HTTP {status}"
        if detail:
            reason = f"{reason}: {detail}"
        if 200 <= status < 300:
            return response.error(reason, code="rejected", retryable=False)
        # 401/403/404 and every other 4xx (an invalid number, a refused sender) are final;
        # 408, 429 and 5xx back off, honouring Retry-After (the shared rule).
        return response.error(reason)

    # ---------------------------------------------------------------- setup

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Read the account's type (GET v3/accounts/{account}/type), a cheap authenticated read.

        A 403 is read as an address not allowed to use the API (unconfirmed, as for sends);
        the address Simwood sees is then asked of its unauthenticated ``tools/myip``.
        """
        try:
            await read_account(
                http, f"{self.base_url}/v3/accounts/{self.config.account}/type",
                carrier=self.name, timeout=self.config.timeout_seconds, secrets=[self._api_key],
                refusals={401: "invalid_auth", 403: "ip_not_allowed"},
                headers={"Authorization": basic_auth(self.config.username, self._api_key),
                         "Accept": "application/json"},
            )
        except CredentialsRejected as refused:
            if refused.kind != "ip_not_allowed":
                raise
            seen_ip = await self._seen_ip(http)
            where = f" ({seen_ip})" if seen_ip else ""
            raise CredentialsRejected(
                f"Simwood refused this server's address{where}: allow it on the account's"
                " API access list", kind="ip_not_allowed", seen_ip=seen_ip) from None
        return AccountInfo(self.config.account)

    # list_numbers keeps the default (None): Simwood lists an account's numbers only as a
    # report, requested (POST numbers/{account}/allocated/all) and fetched later.

    async def _seen_ip(self, http: aiohttp.ClientSession) -> str | None:
        """The address Simwood's API sees (``{"ip": ...}``), or None when it cannot say."""
        try:
            answer = await read_account(http, f"{self.base_url}/v3/tools/myip",
                                        carrier=self.name, timeout=self.config.timeout_seconds)
        except ProviderError:
            return None
        ip = answer.get("ip") if isinstance(answer, dict) else None
        return ip if isinstance(ip, str) and ip else None

    # ---------------------------------------------------------------- webhooks

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read an inbound SMS; any other Simwood event is acknowledged and stores nothing."""
        event = _event(request)
        if _app(event) not in INBOUND_APPS:
            return []
        data = _data(event)
        text = data.get("message")
        if not isinstance(text, str):
            raise MalformedWebhook("Simwood inbound SMS is missing 'data.message'")
        return [InboundMessage(
            carrier_message_id=_text(event, "id"),
            from_number=_inbound_number(data, "originator"),
            to_number=_inbound_number(data, "destination"),
            text=text,
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a delivery report (``sms_send_status``); an unknown status changes nothing."""
        event = _event(request)
        app = _app(event)
        if app != REPORT_APP:
            raise MalformedWebhook(
                f"Simwood event {app!r} is not a delivery report ({REPORT_APP!r}); inbound"
                " SMS belong at the connection's inbound URL")
        message_id = _text(event, "id")
        code = _status_code(_data(event))
        known = REPORT_STATUSES.get(code)
        if known is None:
            return []  # a code Simwood has not documented: keep the status we have
        status, meaning = known
        if status is MessageStatus.FAILED:
            return [StatusUpdate(message_id, status, str(code),
                                 f"Simwood report {code}: {meaning}")]
        return [StatusUpdate(message_id, status)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """200 with a body: Simwood repeats a webhook whose answer is empty."""
        return Reply(200, _ACK, "text/plain; charset=utf-8")

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """200 with a body, as for inbound SMS."""
        return Reply(200, _ACK, "text/plain; charset=utf-8")

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes at Simwood."""
        return (
            f"For each Simwood mobile number, set its inbound SMS configuration to mode"
            f" http_json with endpoint {inbound_url} (in the Simwood portal, or PUT"
            f" /v3/numbers/{self.config.account}/allocated/<number>/sms)."
            f" Delivery reports need no setup: smsbridge passes {status_url} as each"
            " message's report URL."
        )


# -------------------------------------------------------------------- helpers


def _accepted(answer: Any) -> tuple[str | None, int | None]:
    """The id (and, in the extended answer, the parts) of an accepted send."""
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        record: Any = answer[0]
    elif isinstance(answer, dict):
        record = answer.get("data") if isinstance(answer.get("data"), dict) else answer
    else:
        return None, None
    message_id = record.get("id")
    parts = record.get("parts")
    valid_parts = parts if isinstance(parts, int) and not isinstance(parts, bool) and (
        parts >= 1) else None
    if not isinstance(message_id, str) or not message_id.strip():
        return None, valid_parts
    return message_id.strip(), valid_parts


def _error_detail(answer: Any) -> str:
    """Simwood's words from an error body: ``errors`` (a list), ``error`` or ``message``."""
    if not isinstance(answer, dict):
        return ""
    errors = answer.get("errors")
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors if isinstance(e, str | int) and str(e))
    for key in ("error", "message"):
        value = answer.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _event(request: WebhookRequest) -> dict[str, Any]:
    """The event object: the JSON body, or the JSON in the form field ``payload``."""
    if request.content_type == "application/x-www-form-urlencoded":
        payload = first(request.form(), "payload")
        if payload is None:
            raise MalformedWebhook("Simwood form webhook has no 'payload' field")
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise MalformedWebhook(f"Simwood 'payload' field is not valid JSON ({exc})") from None
    else:
        event = request.json()
    if not isinstance(event, dict):
        raise MalformedWebhook("Simwood webhook is not a JSON object")
    return event


def _app(event: dict[str, Any]) -> str:
    app = event.get("app")
    if not isinstance(app, str) or not app.strip():
        raise MalformedWebhook("Simwood webhook is missing 'app'")
    return app.strip()


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, dict):
        raise MalformedWebhook("Simwood webhook has no 'data' object")
    return data


def _text(container: dict[str, Any], key: str, path: str | None = None) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"Simwood webhook is missing '{path or key}'")
    return value.strip()


def _status_code(data: dict[str, Any]) -> int:
    """``data.status``: a number, sent as a JSON number or as digits."""
    raw = data.get("status")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise MalformedWebhook(f"Simwood report 'data.status' {raw!r} is not a status code")


def _inbound_number(data: dict[str, Any], key: str) -> str:
    """``originator`` / ``destination`` in E.164; short codes and sender ids kept as sent."""
    # Digits with a country code (447700900321), or a British national 07700900321.
    return inbound_number(data.get(key), carrier="Simwood", field=f"data.{key}",
                          region=HOME_REGION)
