"""382 Communications: SMS/MMS by one GET to sendsms.cgi, inbound by JSON POST.

Carrier facts and how sure they are: shared/providers/382com.md, read from the jambonz
plug-in (jambonz/messaging-382com); 382 publishes no API reference that could be found.

Send, credentials in the query string::

    GET {url}?user=U&pass=P&source=5145550100&destination=4385550123&message=Hi
    GET {url}?user=U&pass=P&source=5145550100&destination=4385550123&file_url=https://...
    -> 200 text/plain; what the body says is not documented, and it carries no message id

Each value is percent-encoded here: the plug-in ran ``encodeURI`` over the whole URL, which
leaves ``&``, ``=``, ``+``, ``#`` and ``?`` inside a text as they are and cuts the text
there. The plug-in sends ``message`` or ``file_url``, never both (text wins, the picture
is dropped); a text with a picture is sent here as two requests, text first.

Inbound (the number's SMS webhook)::

    POST <inbound url>  {"source": "4385550123", "destination": "5145550100",
                         "type": "sms", "message": "Hi"}
    POST <inbound url>  {..., "type": "mms", "message": "http://picmsg.org/abc123.jpg"}
    POST <inbound url>  source=4385550123 LF destination=5145550100 LF message=Hi
                        (the line format 382's documentation described; also taken as a
                        form body, and ``message`` holding only an http(s) URL is media)

382 sends no delivery receipts, no message id and no signature: the secret token in the
webhook URL is what guards it. Each inbound message gets a new id of ours.

Unconfirmed: the words of the send answer (success and refusal), the text length limit,
media size limits, whether 382 re-sends a webhook not answered 2xx, and whether one
inbound MMS can carry text as well as its picture.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import yarl
from pydantic import Field, SecretStr, field_validator, model_validator

from ...core.errors import InvalidPhoneNumber, MalformedWebhook, ProviderError
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage
from ...core.phone import NumberFormat, format_number
from ..base import UNSIGNED, Capabilities, Provider, ProviderConfig, SendResult, WebhookRequest
from ..http import CarrierResponse, carrier_request
from ..numbers import inbound_number

DEFAULT_URL = "https://secure1.382com.com/sendsms.cgi"
# The whole text travels in the URL. A character costs up to 12 URL characters (4 UTF-8
# bytes, each %XX), so 640 keep the request line under the 8 KB many web servers allow
# (Apache's default is 8190 bytes). 382's own limit is not published.
MAX_TEXT_CHARS = 640
# A send answer whose first word is one of these refuses the message. 382's answer words are
# not published; these are what plain-text SMS gateways answer on failure.
_REFUSAL = re.compile(
    r"^\W*(error|err|fail(?:ed|ure)?|invalid|denied|unauthori[sz]ed|rejected|forbidden)\b",
    re.IGNORECASE,
)
_INBOUND_KEYS = ("source", "destination", "type", "message")
_MAX_QUOTED = 200  # characters of a carrier's answer kept in an error reason


class Com382Config(ProviderConfig):
    """Credentials and send URL of a 382 Communications account."""

    url: str = Field(
        DEFAULT_URL,
        description="the sendsms.cgi address; when base_url is set, base_url takes the place"
                    " of this URL's scheme and host (its path is kept)",
    )
    username: str = Field(min_length=1, description="the API user name 382 gave you (user=)")
    password: SecretStr = Field(description="the API password 382 gave you (pass=)")

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as {DEFAULT_URL}")
        if parts.query or parts.fragment:
            raise ValueError("must have no query (?...) or fragment: smsbridge writes the query")
        return value.strip()

    @model_validator(mode="after")
    def _send_url_usable(self) -> Self:
        # base_url comes from the shared config; checked here, where it is joined to url.
        target = send_url(self)
        try:
            parsed = yarl.URL(target)
            usable = parsed.scheme in ("http", "https") and bool(parsed.host)
        except ValueError:  # yarl refuses a port out of range, among others
            usable = False
        if not usable:
            raise ValueError(f"base_url: {self.base_url!r} with url gives {target!r},"
                             " which is not an http(s) URL")
        return self


def send_url(config: Com382Config) -> str:
    """Where sends go: ``url``, or ``base_url`` followed by the path of ``url``."""
    if not config.base_url:
        return config.url
    return config.base_url.rstrip("/") + urlsplit(config.url).path


class Com382Provider(Provider[Com382Config]):
    """382 Communications numbers (US/Canada): SMS, and MMS with one picture by URL."""

    key: ClassVar[str] = "382com"
    name: ClassVar[str] = "382 Communications"
    Config = Com382Config
    capabilities = Capabilities(
        sms=True,
        mms=True,
        max_text_length=MAX_TEXT_CHARS,
        max_media=1,  # one file_url per request
        max_media_bytes=0,  # no limit published; the server's own limit applies
        inline_media=False,  # file_url only: 382 fetches it
        number_format=NumberFormat.NANPA,  # 10 digits, no +1 (the plug-in's test numbers)
        signature=UNSIGNED,  # 382 signs nothing
        delivery_receipts=False,
        regions=("US", "CA"),
    )

    @property
    def send_url(self) -> str:
        """Where sends go: ``url``, or ``base_url`` followed by the path of ``url``."""
        return send_url(self.config)

    @property
    def _secrets(self) -> list[str]:
        # Both credentials ride in the URL, so both are masked, raw and as sent (%-escaped).
        values = [self.config.username, self.config.password.get_secret_value()]
        return values + [quote(value, safe="") for value in values]

    # ---------------------------------------------------------------- sending

    def max_send_seconds(self, message: OutboundMessage | None = None) -> float:
        """One request, or two for a text with a picture."""
        requests = 2 if message is None else len(_parts(message)) or 1
        return requests * self.config.timeout_seconds

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """GET sendsms.cgi once per part (the text, then the picture); our id is the carrier id."""
        media_urls = self.media_urls(message)
        if len(media_urls) > 1:
            raise ProviderError(f"382com sends one picture per message, got {len(media_urls)}",
                                retryable=False, code="too_many_media")
        source = _wire_number(message.from_number, "from")
        destination = _wire_number(message.to_number, "to")
        parts = _parts(message)
        if not parts:
            raise ProviderError("382com: the message has neither text nor a picture",
                                retryable=False, code="empty_message")
        for index, (field, value) in enumerate(parts):
            try:
                await self._get(http, [("source", source), ("destination", destination),
                                       (field, value)])
            except ProviderError as exc:
                if index == 0:
                    raise
                # The text is already on its way: a retry would send it twice.
                raise ProviderError(
                    f"382com sent the text but not the picture ({exc.reason}); not retried,"
                    " so the text is not sent twice", retryable=False, code=exc.code,
                ) from None
        # 382's answer carries no id (and 382 sends no receipts to match one against).
        return SendResult(message.id, MessageStatus.SENT)

    async def _get(self, http: aiohttp.ClientSession, params: list[tuple[str, str]]) -> None:
        query = urlencode([("user", self.config.username),
                           ("pass", self.config.password.get_secret_value()), *params],
                          quote_via=quote)
        # Sent exactly as encoded (no requoting), so the masked forms of the credentials
        # are the ones on the wire.
        url = yarl.URL(f"{yarl.URL(self.send_url)}?{query}", encoded=True)
        response = await carrier_request(
            http, "GET", url, label="382com", timeout=self.config.timeout_seconds,
            secrets=self._secrets,
        )
        if not 200 <= response.status < 300:
            raise response.error(_status_reason(response))
        refusal = _refusal(response.body)
        if refusal is not None:
            raise response.error(f"382com refused the message: {refusal}", code="refused",
                                 retryable=False)

    # ---------------------------------------------------------------- inbound

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read a JSON, key=value-lines or form webhook into one message."""
        body = request.body.strip()
        if not body:
            raise MalformedWebhook("382com inbound body is empty")
        ctype = request.content_type
        if ctype == "application/json" or ctype.endswith("+json") or body.startswith(b"{"):
            document = request.json()
            if not isinstance(document, dict):
                raise MalformedWebhook("382com inbound JSON must be an object")
            return [_message(document)]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedWebhook("382com inbound body is not UTF-8") from None
        if "\n" not in text and (ctype == "application/x-www-form-urlencoded" or "&" in text):
            fields: dict[str, str] = {}
            for key, value in request.form():
                fields.setdefault(key, value)
            return [_message(fields)]
        return [_message(_line_fields(text))]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes: 382 sets the number's SMS webhook."""
        return (
            f"Ask 382 Communications (portal or support) to send your numbers' inbound SMS and"
            f" MMS to the webhook URL {inbound_url}. 382 sends no delivery receipts, so there"
            " is no status URL to set."
        )


# -------------------------------------------------------------------- helpers


def _parts(message: OutboundMessage) -> list[tuple[str, str]]:
    """The requests ``message`` takes: ``message`` for the text, ``file_url`` for the picture."""
    parts = [("message", message.text)] if message.text.strip() else []
    parts += [("file_url", item.url) for item in message.media[:1] if item.url]
    return parts


def _wire_number(e164: str, field: str) -> str:
    """A number as 382 takes it: 10 NANP digits, no +1."""
    try:
        return format_number(e164, NumberFormat.NANPA)
    except InvalidPhoneNumber:
        raise ProviderError(f"382com sends only between NANP (+1) numbers; {field} {e164} is not"
                            " one", retryable=False, code=f"invalid_{field}") from None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:_MAX_QUOTED]


def _status_reason(response: CarrierResponse) -> str:
    """``382com: HTTP 503``, with the answer's first line when it is plain text."""
    text = response.body.decode("utf-8", "replace")
    is_html = "html" in response.headers.get("Content-Type", "") or text.lstrip()[:1] == "<"
    line = "" if is_html else _first_line(text)
    return f"382com: HTTP {response.status}" + (f" ({line})" if line else "")


def _refusal(body: bytes) -> str | None:
    """The answer's first line when it says the message was refused, else None."""
    text = body.decode("utf-8", "replace").strip()
    if _REFUSAL.match(text):
        return _first_line(text)
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    if isinstance(answer, dict):
        verdict = " ".join(str(answer.get(key, "")) for key in ("status", "result"))
        if answer.get("error") or answer.get("errors") or _REFUSAL.match(verdict.strip()):
            return _first_line(text)
    return None


def _line_fields(text: str) -> dict[str, str]:
    """``key=value`` lines; lines after ``message=`` that start no new key belong to the text."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        name = key.strip().lower()
        if eq and name in _INBOUND_KEYS and name not in fields:
            fields[name] = value
            last = name
        elif last == "message":
            fields["message"] += "\n" + line
    return fields


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and not any(c.isspace() for c in value)


def _message(fields: Mapping[str, Any]) -> InboundMessage:
    """One message from the webhook's fields, whichever format carried them."""
    message = fields.get("message")
    if message is None:
        raise MalformedWebhook("382com inbound is missing 'message'")
    if not isinstance(message, str):
        raise MalformedWebhook("382com inbound 'message' must be a string")
    given = fields.get("type")
    kind = given.strip().lower() if isinstance(given, str) else given
    if kind is None:  # the line format has no type: a lone URL is a picture
        kind = "mms" if _is_url(message.strip()) else "sms"
    if kind not in ("sms", "mms"):
        raise MalformedWebhook(f"382com inbound 'type' is {given!r}; expected 'sms' or 'mms'")
    text = message
    media: tuple[Media, ...] = ()
    if kind == "mms":
        url = message.strip()
        if not _is_url(url):
            raise MalformedWebhook("382com MMS 'message' must be the picture's http(s) URL")
        guessed = mimetypes.guess_type(urlsplit(url).path)[0]
        text, media = "", (Media(guessed or "application/octet-stream", url),)
    return InboundMessage(
        # 382 gives no id. A fresh one per webhook never merges two identical texts (ARM,
        # then ARM again) into one; the cost is a second copy if 382 ever re-sends.
        carrier_message_id=f"382com-{uuid.uuid4().hex}",
        from_number=_inbound_number(fields, "source"),
        to_number=_inbound_number(fields, "destination"),
        text=text,
        media=media,
    )


def _inbound_number(fields: Mapping[str, Any], key: str) -> str:
    """A webhook number in E.164: 382 sends 10 digits without the country code."""
    raw = fields.get(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # a JSON number
    return inbound_number(raw, carrier="382com", field=key)
