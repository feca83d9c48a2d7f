"""VoIP.ms: SMS/MMS through the REST/JSON API, inbound by URL callback or JSON webhook.

Carrier facts and how sure they are: the project's carrier notes, shared/providers/voipms.md
(cited as §n).

Outbound: one URL for every method (§1), credentials in the form (§2), HTTP 200 even
for refusals, so only the JSON ``status`` tells success from failure (§4).

Inbound, all on one endpoint (§6, §7)::

    GET  /inbound?to=5145550100&from=4385550123&message=Hi&id=123456789&date=...&media=
    GET  /inbound?to=5145550100&from=4385550123&id=123456789      (id-only: text via getSMS)
    POST /inbound  {"data": {"payload": {"id": ..., "from": {"phone_number": ...}, ...}}}
    POST /inbound  to=...&from=...&message=...&id=...             (form, urlencoded or multipart)
"""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import mimetypes
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from pydantic import Field, SecretStr

from ...core.errors import (
    CredentialsRejected,
    InvalidPhoneNumber,
    MalformedWebhook,
    ProviderError,
)
from ...core.messages import InboundMessage, Media, OutboundMessage
from ...core.phone import NumberFormat, format_number, to_e164
from ..base import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
    e164_numbers,
)
from ..http import CarrierResponse, carrier_request, retryable_status

API_PATH = "/api/v1/rest.php"
SMS_MAX_BYTES = 160  # sendSMS counts UTF-8 bytes, not characters (§3.1)
MMS_MAX_CHARS = 2048  # sendMMS "max chars: 2048" (§3.2)
MAX_MEDIA = 3  # media1..media3 (§3.2)
# The most sendSMS parts split_utf8 can make of a text of MMS_MAX_CHARS: a part holds at
# least a quarter of SMS_MAX_BYTES in characters (4-byte ones), and a cut at whitespace
# keeps at least half of those plus one.
MAX_SPLIT_PARTS = -(-MMS_MAX_CHARS // (SMS_MAX_BYTES // 4 // 2 + 1))

# §4: the statuses where trying again later can help; every other status is final.
RETRYABLE_STATUSES = frozenset(
    {"api_limit_exceeded", "sms_failed", "method_maintenance", "tls_error", "sms_wait_message"}
)
# The per-minute API cap and the SMS toggle cool-down both clear within a minute (§4).
RETRY_AFTER_SECONDS = {"api_limit_exceeded": 60.0, "sms_wait_message": 60.0}

# Readable meaning of the status words (§4); the API itself sends no message text.
STATUS_MEANING = {
    "invalid_credentials": "API username or password is wrong",
    "missing_credentials": "API username or password is missing",
    "api_not_enabled": "the API is not enabled on the account",
    "ip_not_enabled": "this server's IP is not in the account's API allow-list",
    "api_limit_exceeded": "per-minute API request limit reached",
    "limit_reached": "daily API message limit reached",
    "missing_method": "API method missing",
    "invalid_method": "API method unknown",
    "method_maintenance": "API method under maintenance",
    "missing_did": "sending DID missing",
    "invalid_did": "sending DID not valid, not on this account or not SMS-enabled",
    "missing_dst": "destination missing",
    "invalid_dst": "destination not valid",
    "message_empty": "message text is empty",
    "sms_toolong": "text too long for sendSMS",
    "sms_failed": "the message was not sent",
    "no_sms": "no message matches",
    "exceeds_file_size": "attachment too large",
    "no_base64file": "attachment is not valid base64",
    "sms_wait_message": "SMS settings changed too quickly; wait a minute",
    "tls_error": "TLS error at VoIP.ms",
    "invalid_to_number": "destination not valid",
    "invalid_from_number": "sender not valid",
}

# The statuses that refuse the credentials themselves (§2, §4), as CredentialsRejected kinds.
CREDENTIAL_REFUSALS = {
    "invalid_credentials": "invalid_auth",
    "missing_credentials": "invalid_auth",
    "api_not_enabled": "api_disabled",
    "ip_not_enabled": "ip_not_allowed",
}
# getDIDsInfo's status for an account that has no DID yet (a public Android client reads it).
NO_DID = "no_did"
_IP_TOKEN = re.compile(r"[0-9A-Fa-f:.]{3,45}")

# Keys of the URL callback template (§6); used to re-split a ';'-separated query.
CALLBACK_KEYS = ("to", "from", "message", "id", "date", "media")


class VoipmsConfig(ProviderConfig):
    """Credentials and options of a VoIP.ms account."""

    username: str = Field(description="the e-mail address used to log in to the VoIP.ms portal")
    api_password: SecretStr = Field(
        description="the API password set under Main Menu > SOAP and REST/JSON API"
    )
    number_format: Literal["nanpa", "e164"] = Field(
        "nanpa", description="how did/dst are written when sending: 5145550100 or +15145550100"
    )
    long_text: Literal["mms", "split"] = Field(
        "mms", description="texts over 160 UTF-8 bytes: one sendMMS, or several sendSMS parts"
    )


class VoipmsProvider(Provider[VoipmsConfig]):
    """VoIP.ms DIDs (US and Canada): sendSMS/sendMMS out, URL callback or JSON webhook in."""

    key: ClassVar[str] = "voipms"
    name: ClassVar[str] = "VoIP.ms"
    Config = VoipmsConfig
    capabilities = Capabilities(
        sms=True,
        mms=True,
        max_text_length=MMS_MAX_CHARS,
        max_media=MAX_MEDIA,
        # ~1.2 MB per file is a third-party figure, not official (§3.2); one public
        # integration caps files at 1300 KiB. Stay under both.
        max_media_bytes=1_200_000,
        inline_media=True,
        number_format=NumberFormat.NANPA,
        signature=UNSIGNED,  # neither the URL callback nor the webhook is signed (§6, §7)
        delivery_receipts=False,
        regions=("US", "CA"),
    )
    default_base_url: ClassVar[str] = "https://voip.ms"

    # ---------------------------------------------------------------- sending

    def max_send_seconds(self, message: OutboundMessage | None = None) -> float:
        """One request per split part; a single sendSMS or sendMMS otherwise."""
        if self.config.long_text != "split":
            return self.config.timeout_seconds
        if message is None or message.media:
            parts = MAX_SPLIT_PARTS if message is None else 1
        else:
            parts = len(split_utf8(message.text, SMS_MAX_BYTES))
        return parts * self.config.timeout_seconds

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Send by sendSMS, sendMMS or several sendSMS parts, as text length and media demand."""
        did = self._wire_number(message.from_number, "did")
        dst = self._wire_number(message.to_number, "dst")
        text = message.text
        if not message.media and len(text.encode("utf-8")) <= SMS_MAX_BYTES:
            data = await self._call(http, "sendSMS", {"did": did, "dst": dst, "message": text})
            return SendResult(carrier_message_id=_message_id(data, "sms"), segments=1)
        if not message.media and self.config.long_text == "split":
            return await self._send_split(http, did, dst, text)
        return await self._send_mms(http, did, dst, text, message.media)

    async def _send_mms(
        self, http: aiohttp.ClientSession, did: str, dst: str, text: str, media: Sequence[Media]
    ) -> SendResult:
        if len(text) > MMS_MAX_CHARS:
            raise ProviderError(
                f"VoIP.ms sendMMS takes at most {MMS_MAX_CHARS} characters, got {len(text)}",
                retryable=False, code="message_too_long",
            )
        if len(media) > MAX_MEDIA:
            raise ProviderError(
                f"VoIP.ms takes at most {MAX_MEDIA} attachments, got {len(media)}",
                retryable=False, code="too_many_media",
            )
        # `message` is required by sendMMS; whether an empty one is accepted is not
        # known (§3.2), so a media-only MMS carries a single space.
        params = {"did": did, "dst": dst, "message": text or " "}
        for index, item in enumerate(media, start=1):
            params[f"media{index}"] = _media_field(item, index)
        data = await self._call(http, "sendMMS", params)
        return SendResult(carrier_message_id=_message_id(data, "mms"), segments=1)

    async def _send_split(
        self, http: aiohttp.ClientSession, did: str, dst: str, text: str
    ) -> SendResult:
        parts = split_utf8(text, SMS_MAX_BYTES)
        ids: list[str] = []
        for index, part in enumerate(parts):
            try:
                data = await self._call(http, "sendSMS", {"did": did, "dst": dst, "message": part})
            except ProviderError as exc:
                if not ids:
                    raise
                # Earlier parts are already on their way; a retry would send them twice.
                raise ProviderError(
                    f"VoIP.ms accepted parts 1-{index} of {len(parts)} but part {index + 1} "
                    f"failed ({exc.reason}); not retrying to avoid duplicate parts",
                    retryable=False, code=exc.code,
                ) from None
            ids.append(_message_id(data, "sms"))
        return SendResult(carrier_message_id=ids[0], segments=len(parts), extra_ids=tuple(ids[1:]))

    def _wire_number(self, e164: str, field: str) -> str:
        fmt = NumberFormat.E164 if self.config.number_format == "e164" else NumberFormat.NANPA
        try:
            return format_number(e164, fmt)
        except InvalidPhoneNumber as exc:
            raise ProviderError(
                f"VoIP.ms sends only between US/Canada numbers; {field} {exc.reason}",
                retryable=False, code=f"invalid_{field}",
            ) from None

    async def _call(
        self, http: aiohttp.ClientSession, method: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """POST one API method as multipart/form-data; the JSON answer when status is success."""
        return self._read_answer(method, await self._post(http, method, params))

    async def _post(
        self, http: aiohttp.ClientSession, method: str, params: Mapping[str, str]
    ) -> CarrierResponse:
        """POST one API method as multipart/form-data; the answer as it came."""
        password = self.config.api_password.get_secret_value()
        fields = {"api_username": self.config.username, "api_password": password,
                  "method": method, "content_type": "json", **params}
        # multipart, not a query string: base64 media would make a URL far too long (§1).
        with aiohttp.MultipartWriter("form-data") as form:
            for name, value in fields.items():
                part = form.append(value)
                part.set_content_disposition("form-data", name=name)
        return await carrier_request(
            http, "POST", self.base_url + API_PATH, label=f"VoIP.ms {method}",
            timeout=self.config.timeout_seconds, secrets=[password], data=form,
        )

    def _read_answer(self, method: str, response: CarrierResponse) -> dict[str, Any]:
        if response.status == 429:
            raise response.error(f"VoIP.ms {method}: HTTP 429 too many requests")
        if response.status != 200:
            # Every 200 carries the API's verdict (§4); any other status is the web server's.
            raise response.error(None if retryable_status(response.status)
                                 else f"VoIP.ms {method}: unexpected HTTP {response.status}")
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            # Infrastructure pages (HTML, empty bodies) are transient (§4).
            raise ProviderError(f"VoIP.ms {method}: answer is not the API's JSON",
                                retryable=True, code="invalid_response")
        word = data["status"]
        if word != "success":
            meaning = STATUS_MEANING.get(word, "refused")
            raise ProviderError(
                response.redact(f"VoIP.ms {method}: {word} ({meaning})"),
                retryable=word in RETRYABLE_STATUSES, code=response.redact(word),
                retry_after=RETRY_AFTER_SECONDS.get(word),
            )
        return data

    # ---------------------------------------------------------------- inbound

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read a URL callback (GET query or POST form) or a JSON webhook into one message."""
        if request.method.upper() == "GET" or not request.body.strip():
            return [_message_from_pairs(_callback_pairs(request))]
        ctype = request.content_type
        if ctype == "application/json" or (not ctype and request.body.lstrip()[:1] == b"{"):
            return [_message_from_webhook(request.json())]
        if ctype == "multipart/form-data":
            return [_message_from_pairs(_multipart_pairs(request))]
        if ctype in ("application/x-www-form-urlencoded", ""):
            return [_message_from_pairs(request.form())]
        raise MalformedWebhook(f"VoIP.ms inbound: unsupported content type {ctype!r}")

    async def complete_inbound(
        self, messages: list[InboundMessage], http: aiohttp.ClientSession
    ) -> list[InboundMessage]:
        """Fetch the text of id-only callbacks by getSMS (getMMS for media); raise to be re-sent."""
        completed: list[InboundMessage] = []
        for message in messages:
            if message.text is None:
                message = await self._fetch_text(message, http)
            completed.append(message)
        return completed

    async def _fetch_text(self, message: InboundMessage, http: aiohttp.ClientSession
                          ) -> InboundMessage:
        # MMS live in their own table: getSMS leaves them out unless all_messages=1,
        # which needs sms=0 (§8), so a callback that carried media is looked up by getMMS.
        method, id_key = ("getMMS", "mms") if message.media else ("getSMS", "sms")
        today = datetime.now(UTC).date()
        # getSMS filters on dates (default: today, §8); a retried callback can be a day old.
        params = {id_key: message.carrier_message_id, "type": "1",
                  "from": (today - timedelta(days=2)).isoformat(), "to": today.isoformat()}
        try:
            data = await self._call(http, method, params)
        except ProviderError as exc:
            raise ProviderError(
                f"VoIP.ms inbound {message.carrier_message_id}: could not fetch its text "
                f"({exc.reason}); VoIP.ms will send the callback again",
                retryable=True, code=exc.code,
            ) from None
        rows = data.get(id_key)
        for row in rows if isinstance(rows, list) else []:
            # Check the id: the API's filters are loose and a wrong row is worse than none (§6).
            if isinstance(row, dict) and str(row.get("id")) == message.carrier_message_id:
                text = row.get("message")
                return InboundMessage(
                    message.carrier_message_id, message.from_number, message.to_number,
                    text if isinstance(text, str) else "", message.media, message.received_at,
                )
        raise ProviderError(
            f"VoIP.ms inbound {message.carrier_message_id}: {method} has no row with this id; "
            "VoIP.ms will send the callback again",
            retryable=True, code="no_sms",
        )

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """Exactly ``ok``: anything else makes VoIP.ms re-send every 30 minutes (§6)."""
        return Reply(200, b"ok", "text/plain; charset=utf-8")

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """The URL-callback template for the DID's SMS settings, and the alternatives."""
        sep = "&" if "?" in inbound_url else "?"
        full = (f"{inbound_url}{sep}to={{TO}}&from={{FROM}}&message={{MESSAGE}}&id={{ID}}"
                f"&date={{TIMESTAMP}}&media={{MEDIA}}")
        id_only = (f"{inbound_url}{sep}to={{TO}}&from={{FROM}}&id={{ID}}"
                   f"&date={{TIMESTAMP}}&media={{MEDIA}}")
        return (
            f"{full}\n"
            f"Id-only variant (if a proxy refuses line breaks in URLs; the text is fetched "
            f"with getSMS, so the API must allow this server's IP): {id_only}\n"
            f"Or enable the SMS/MMS Webhook (JSON POST) with URL {inbound_url}. "
            "Turn on 'URL Callback Retry' so VoIP.ms re-sends until the gateway answers ok."
        )


    # ---------------------------------------------------------------- account

    def account_identity(self) -> str:
        """The API username: the e-mail address of the account."""
        return self.config.username

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Ask getDIDsInfo, the cheapest read that needs the API on and this IP allowed."""
        await self._dids(http)
        return AccountInfo(self.config.username)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The DIDs with SMS enabled, from getDIDsInfo's ``sms_enabled``."""
        rows = await self._dids(http)
        return e164_numbers(str(row.get("did", "")) for row in rows
                            if str(row.get("sms_enabled", "")) == "1")

    async def _dids(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """getDIDsInfo's rows; CredentialsRejected when the account refuses this caller."""
        response = await self._post(http, "getDIDsInfo", {})
        data = response.json()
        word = data.get("status") if isinstance(data, dict) else None
        if isinstance(data, dict) and word in CREDENTIAL_REFUSALS:
            kind = CREDENTIAL_REFUSALS[word]
            seen_ip = _seen_ip(data) if kind == "ip_not_allowed" else None
            where = f" ({seen_ip})" if seen_ip else ""
            raise CredentialsRejected(
                f"VoIP.ms getDIDsInfo: {word} ({STATUS_MEANING[word]}{where})",
                kind=kind, seen_ip=seen_ip)
        if word == NO_DID:
            return []
        rows = self._read_answer("getDIDsInfo", response).get("dids")
        return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


# -------------------------------------------------------------------- helpers


def _seen_ip(data: Mapping[str, Any]) -> str | None:
    """The address VoIP.ms saw, from an ``ip`` field or from the ``message`` text.

    Error answers carry a ``message`` beside ``status`` (two public clients log it);
    where an ip_not_enabled answer puts the caller's address is not documented, so both
    places are read and only a valid IP address is taken.
    """
    candidates = [data.get("ip")]
    message = data.get("message")
    if isinstance(message, str):
        candidates += [token.strip(".:") for token in _IP_TOKEN.findall(message)]
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        try:
            return str(ipaddress.ip_address(candidate.strip()))
        except ValueError:
            continue
    return None


def split_utf8(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-8 bytes that join back to ``text``.

    Never cuts inside a character; cuts after whitespace when there is some in the
    second half of a part, so words stay whole.
    """
    parts: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        size, end = 0, 0
        while end < len(rest):
            width = len(rest[end].encode("utf-8"))
            if size + width > limit:
                break
            size += width
            end += 1
        end = max(end, 1)  # a single character is at most 4 bytes, so never 0 for limit >= 4
        cut = end
        for pos in range(end - 1, end // 2 - 1, -1):
            if rest[pos].isspace():
                cut = pos + 1
                break
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return parts


def _message_id(data: Mapping[str, Any], key: str) -> str:
    """The id VoIP.ms gives a sent message; a number in the docs, a string in some answers."""
    value = data.get(key)
    return "" if value is None else str(value)


def _media_field(item: Media, index: int) -> str:
    """A ``mediaN`` value: the URL, or the inline data as a data URI (§3.2)."""
    if item.url:
        return item.url
    if item.data_base64:
        return f"data:{item.content_type};base64,{item.data_base64}"
    raise ProviderError(f"attachment {index} has neither a URL nor data", retryable=False,
                        code="invalid_media")


def _callback_pairs(request: WebhookRequest) -> list[tuple[str, str]]:
    """The callback's key/value pairs, also when the template used ';' as separator (§6)."""
    pairs = list(request.query)
    if any(key in ("id", "from") for key, _ in pairs) or not pairs:
        return pairs
    raw = urlsplit(request.url).query
    if ";" in raw and "&" not in raw:
        # The raw query still has its %-escapes, so a ';' inside the text stays %3B.
        return parse_qsl(raw, keep_blank_values=True, separator=";")
    return _resplit_semicolons(pairs)


def _resplit_semicolons(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Undo a query parsed on '&' only; a ';' not followed by a template key stays in the value."""
    joined = ";".join(f"{key}={value}" for key, value in pairs)
    out: list[tuple[str, str]] = []
    for piece in joined.split(";"):
        key, eq, value = piece.partition("=")
        if eq and key in CALLBACK_KEYS:
            out.append((key, value))
        elif out:
            out[-1] = (out[-1][0], f"{out[-1][1]};{piece}")
        else:
            out.append((key, value))
    return out


def _multipart_pairs(request: WebhookRequest) -> list[tuple[str, str]]:
    """The text fields of a multipart/form-data body."""
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    if not parsed.is_multipart():
        raise MalformedWebhook("VoIP.ms inbound: multipart body could not be read")
    pairs: list[tuple[str, str]] = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        try:
            pairs.append((name, payload.decode(part.get_content_charset() or "utf-8")))
        except (UnicodeDecodeError, LookupError):
            raise MalformedWebhook(f"VoIP.ms inbound: field {name!r} is not UTF-8") from None
    return pairs


def _inbound_number(value: str, key: str) -> str:
    """A callback number in E.164: 10 digits (NANPA dialmode) or +1/1 + 10 (E164 dialmode)."""
    raw = value.strip()
    if raw.isdigit() and 3 <= len(raw) <= 6:
        return raw  # short codes are not E.164; they pass through as given
    try:
        return to_e164(raw, "US", field=key)
    except InvalidPhoneNumber as exc:
        raise MalformedWebhook(f"VoIP.ms inbound: {key} {exc.reason}") from None


def _media_from_urls(value: str) -> tuple[Media, ...]:
    """Media for the comma-separated URLs of ``{MEDIA}``; type guessed from the extension."""
    media = []
    for url in (piece.strip() for piece in value.split(",")):
        if url:
            guessed, _ = mimetypes.guess_type(urlsplit(url).path)
            media.append(Media(content_type=guessed or "application/octet-stream", url=url))
    return tuple(media)


def _message_from_pairs(pairs: Sequence[tuple[str, str]]) -> InboundMessage:
    """One message from URL-callback keys; no ``message`` key at all means id-only."""
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    for key in ("id", "from", "to"):
        if not fields.get(key, "").strip():
            raise MalformedWebhook(f"VoIP.ms inbound is missing {key!r}")
    return InboundMessage(
        carrier_message_id=fields["id"].strip(),
        from_number=_inbound_number(fields["from"], "from"),
        to_number=_inbound_number(fields["to"], "to"),
        text=fields.get("message"),  # None only when the template had no {MESSAGE}
        media=_media_from_urls(fields.get("media", "")),
    )


def _message_from_webhook(data: Any) -> InboundMessage:
    """One message from the JSON SMS/MMS webhook (Telnyx-like shape, §7)."""
    payload = data.get("data", {}).get("payload") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        raise MalformedWebhook("VoIP.ms webhook is missing 'data.payload'")
    message_id = payload.get("id")
    if not isinstance(message_id, str | int) or not str(message_id).strip():
        raise MalformedWebhook("VoIP.ms webhook is missing 'data.payload.id'")
    sender = payload.get("from")
    sender = sender.get("phone_number") if isinstance(sender, dict) else None
    if not isinstance(sender, str) or not sender.strip():
        raise MalformedWebhook("VoIP.ms webhook is missing 'data.payload.from.phone_number'")
    recipients = payload.get("to")
    first = recipients[0] if isinstance(recipients, list) and recipients else None
    recipient = first.get("phone_number") if isinstance(first, dict) else None
    if not isinstance(recipient, str) or not recipient.strip():
        raise MalformedWebhook("VoIP.ms webhook is missing 'data.payload.to[0].phone_number'")
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        raise MalformedWebhook("VoIP.ms webhook 'data.payload.text' must be a string")
    media: list[Media] = []
    for item in payload.get("media") or []:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise MalformedWebhook("each VoIP.ms webhook media item needs a 'url'")
        ctype = item.get("content_type")
        if not isinstance(ctype, str) or not ctype:
            ctype = mimetypes.guess_type(urlsplit(item["url"]).path)[0]
        media.append(Media(content_type=ctype or "application/octet-stream", url=item["url"]))
    extra: dict[str, Any] = {}
    received = _iso_time(payload.get("received_at"))
    if received is not None:
        extra["received_at"] = received
    return InboundMessage(
        carrier_message_id=str(message_id).strip(),
        from_number=_inbound_number(sender, "from"),
        to_number=_inbound_number(recipient, "to"),
        text=text or "",  # an MMS may carry no text; the webhook is never id-only
        media=tuple(media),
        **extra,
    )


def _iso_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
