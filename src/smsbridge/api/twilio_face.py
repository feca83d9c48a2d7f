"""The Twilio-compatible face: ``/2010-04-01/Accounts/{AccountSid}/...`` as Twilio serves it.

An app written for Twilio points its base URL at smsbridge and keeps its code: the account
id (``acc_...``) is the AccountSid, HTTP Basic ``AccountSid:auth_token`` (or any user name
with an API key of the account) authenticates, and messages go out through the account's
connections. Answers and errors are Twilio's JSON shapes (gateway/twilio_forms.py), with
Twilio's error codes where one fits (https://www.twilio.com/docs/api/errors):

    20003 Authenticate (401)           20004 Method not allowed (405)
    20404 Not found (404)              20500 Internal server error (500)
    21211 invalid To                   21212 invalid From (not a phone number)
    21606 a From that is not the account's (messages), 21210 (calls)
    21602 neither Body nor MediaUrl    21603 / 21604 From / To missing (messages)
    21213 / 21201 From / To missing (calls)
    21609 invalid StatusCallback       21610 recipient opted out (replied STOP)
    21617 Body too long                21620 invalid MediaUrl    21623 too many MediaUrl
    21705 MessagingServiceSid is not a connection of the account
    12100 Twiml unreadable             12102 Twiml's root is not <Response>
    21200 / 21205 a call without inline Twiml (a Url is not fetched)
    400   any other bad parameter

Like the ``/v1/`` API key gate (auth.py), credentials are checked from the headers before
any body is read, and another account's path answers exactly like an unknown one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..core.errors import (
    InvalidInput,
    InvalidPhoneNumber,
    NotFound,
    RecipientOptedOut,
    SecretKeyError,
    StoreUnavailable,
)
from ..core.messages import KIND_CALL, KIND_MESSAGE, Message, MessageStatus
from ..core.phone import to_e164
from ..core.scope import Scope as AccountScope
from ..gateway.accounts import API_KEY_PREFIX
from ..gateway.service import MAX_REPEAT, CallRequest, Gateway, MediaInput, SendRequest
from ..gateway.twilio_forms import API_VERSION, message_resource, twilio_date
from ..store.base import MessageFilter
from .limits import BodyTooLarge

log = logging.getLogger("smsbridge.api")

PREFIX = f"/{API_VERSION}"
ERROR_INFO = "https://www.twilio.com/docs/errors/"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="smsbridge"'}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Twilio's own limits: ten media per message, 4,000 characters of inline TwiML.
MAX_MEDIA_URLS = 10
MAX_TWIML_CHARS = 4000
MAX_FORM_FIELDS = 100
# Our ids are "msg_"/"call_" and 32 hex digits; anything much longer is nobody's.
MAX_SID_CHARS = 100

_ACCOUNT_PATH = re.compile(r"/Accounts/(?P<sid>[^/]+?)(?P<rest>\.json|/.*)")
_RESOURCE = re.compile(r"/(?P<kind>Messages|Calls)(?:/(?P<sid>[^/]+))?\.json")


class TwilioError(Exception):
    """An answer in Twilio's error shape: HTTP ``status``, Twilio ``code`` and a message."""

    def __init__(self, status: int, code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The JSON answer, as Twilio's API writes it."""
        return twilio_error(self.status, self.code, self.message, self.headers)


def twilio_error(status: int, code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> Response:
    """Twilio's error JSON: ``code``, ``message``, ``more_info`` and ``status``."""
    body = {"code": code, "message": message, "more_info": f"{ERROR_INFO}{code}",
            "status": status}
    return _json(body, status, headers)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status_code=status,
                    media_type="application/json", headers=dict(headers or {}))


def _not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def _bad(code: int, message: str) -> TwilioError:
    return TwilioError(400, code, message)


# ------------------------------------------------------------------ the ASGI app


class TwilioFace:
    """The ASGI app served under ``/2010-04-01``: authenticates, then routes."""

    def __init__(self, gateway: Callable[[], Gateway]) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets here; lifespan is the outer app's
        path = _route_path(scope)
        has_body = _has_body(scope)
        try:
            account = await self._authenticate(scope)
            if account is None:
                raise TwilioError(401, 20003, "Authenticate", CHALLENGE)
            handler, args = self._route(scope["method"], path, account.account_id)
            response = await handler(Request(scope, receive), account.account_id, *args)
        except TwilioError as exc:
            if has_body and exc.status in (401, 404, 405):
                # Refused before the body was read: closing spares reading it.
                exc.headers.setdefault("Connection", "close")
            response = exc.response()
        except BodyTooLarge:
            raise  # answered 413 by the body limit around the whole app
        except StoreUnavailable as exc:
            log.error("store unavailable: %s", exc.reason)
            response = twilio_error(503, 503, f"Store unavailable: {exc.reason}",
                                    {"Retry-After": "5"})
        except SecretKeyError as exc:
            log.error("secret key: %s", exc)
            response = twilio_error(503, 503, f"Secret key unavailable: {exc}")
        except Exception:
            log.exception("unexpected error in the Twilio face")
            response = twilio_error(500, 20500, "Internal server error: the gateway failed "
                                                "unexpectedly; see its log")
        await response(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> AccountScope | None:
        """The account of the request's Basic credentials, or None; the body is not read."""
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        if authorization[:6].lower() != "basic ":
            return None
        try:
            user, sep, secret = base64.b64decode(authorization[6:].strip(), validate=True
                                                 ).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return None
        if not sep or not secret:
            return None
        gateway = self.gateway()
        claimed: str | None = user
        if secret.startswith(API_KEY_PREFIX):
            # Twilio accepts API keys with their own SID as the user name; any name goes here.
            record = await gateway.authenticate(secret)
            claimed = record.account_id if record is not None else None
        if not claimed:
            return None
        return await gateway.authenticate_account(claimed, secret)

    def _route(self, method: str, path: str, account: str
               ) -> tuple[Callable[..., Awaitable[Response]], tuple[Any, ...]]:
        """The handler of ``method path`` and its extra arguments; 404 or 405 otherwise."""
        found = _ACCOUNT_PATH.fullmatch(path)
        # Another account's path is answered exactly like an account that does not exist.
        if found is None or found["sid"] != account:
            raise _not_found(PREFIX + path)
        rest = found["rest"]
        routes: dict[str, Callable[..., Awaitable[Response]]]
        args: tuple[Any, ...] = ()
        if rest == ".json":
            routes = {"GET": self.fetch_account}
        elif (resource := _RESOURCE.fullmatch(rest)) is None:
            raise _not_found(PREFIX + path)
        elif resource["sid"] is None:
            routes = ({"POST": self.create_message, "GET": self.list_messages}
                      if resource["kind"] == "Messages" else
                      {"POST": self.create_call, "GET": self.list_calls})
        else:
            routes = {"GET": self.fetch_message if resource["kind"] == "Messages"
                      else self.fetch_call}
            args = (resource["sid"], PREFIX + path)
        handler = routes.get(method)
        if handler is None:
            raise TwilioError(405, 20004, f"Method not allowed: {method} {PREFIX}{path}",
                              {"Allow": ", ".join(routes)})
        return handler, args

    # ---------------------------------------------------------------- account

    async def fetch_account(self, request: Request, account: str) -> Response:
        """GET /Accounts/{sid}.json: the account as Twilio's Account resource."""
        gateway = self.gateway()
        record = await gateway.get_account(AccountScope(account), account)
        uri = f"{PREFIX}/Accounts/{account}.json"
        base = uri.removesuffix(".json")
        created = twilio_date(datetime.fromtimestamp(record.created_at, UTC))
        return _json({
            "sid": record.id, "owner_account_sid": record.id, "friendly_name": record.name,
            "status": "active", "type": "Full", "date_created": created,
            "date_updated": created, "uri": uri,
            "subresource_uris": {"messages": f"{base}/Messages.json",
                                 "calls": f"{base}/Calls.json"},
        })

    # ---------------------------------------------------------------- messages

    async def create_message(self, request: Request, account: str) -> Response:
        """POST /Messages.json: queue a message; 201 with Twilio's Message resource."""
        form = await _read_form(request)
        to = form.first("To")
        if not to:
            raise _bad(21604, "A 'To' phone number is required.")
        service = form.first("MessagingServiceSid") or None
        gateway = self.gateway()
        sender = form.first("From")
        if service is not None:
            sender = sender or self._only_number(gateway, account, service)
        if not sender:
            raise _bad(21603, "A 'From' phone number is required.")
        body = form.first("Body")
        media = form.all("MediaUrl")
        if not body.strip() and not media:
            raise _bad(21602, "Message body is required.")
        if len(media) > MAX_MEDIA_URLS:
            raise _bad(21623, f"Number of media files exceeds allowed limit of "
                              f"{MAX_MEDIA_URLS}.")
        request_ = SendRequest(
            from_number=sender, to_number=to, text=body,
            media=[MediaInput(url=url) for url in media], connection=service,
            status_callback=form.first("StatusCallback") or None)
        try:
            message, _ = await gateway.send(request_, None, scope=f"twilio:{account}",
                                            account=account)
        except InvalidInput as exc:
            raise _message_error(exc, to, sender) from None
        return _json(message_resource(message, account), 201)

    @staticmethod
    def _only_number(gateway: Gateway, account: str, service: str) -> str:
        """The sending number of a connection named as MessagingServiceSid, when it has one."""
        try:
            numbers = gateway.get_connection(AccountScope(account), service)["numbers"]
        except NotFound:
            raise _no_service(service) from None
        if len(numbers) != 1:
            raise _bad(21603, f"A 'From' phone number is required: connection {service!r} "
                              f"has {len(numbers)} numbers, so smsbridge cannot pick one.")
        return str(numbers[0])

    async def fetch_message(self, request: Request, account: str, sid: str, path: str
                            ) -> Response:
        """GET /Messages/{sid}.json: one of the account's messages."""
        message = None
        if len(sid) <= MAX_SID_CHARS and "\x00" not in sid:
            message = await self.gateway().get_message(sid, account)
        if message is None:
            raise _not_found(path)
        return _json(message_resource(message, account))

    async def list_messages(self, request: Request, account: str) -> Response:
        """GET /Messages.json: the account's messages newest first, in Twilio's list page."""
        return await self._list(request, account, KIND_MESSAGE, "Messages", "messages",
                                lambda m: message_resource(m, account))

    # ---------------------------------------------------------------- calls

    async def create_call(self, request: Request, account: str) -> Response:
        """POST /Calls.json: queue a call speaking the Twiml's <Say>; 201 with a Call."""
        form = await _read_form(request)
        to, sender, twiml = form.first("To"), form.first("From"), form.first("Twiml")
        if not to:
            raise _bad(21201, "No 'To' number is specified.")
        if not sender:
            raise _bad(21213, "A 'From' phone number is required.")
        if not twiml:
            if form.first("Url") or form.first("ApplicationSid"):
                raise _bad(21205, "smsbridge does not fetch call instructions from a Url or "
                                  "an application: give them inline as Twiml "
                                  "(<Response><Say>text</Say></Response>).")
            raise _bad(21200, "Twiml is required: smsbridge speaks the <Say> of inline "
                              "TwiML (<Response><Say>text</Say></Response>).")
        spoken = parse_say_twiml(twiml)
        request_ = CallRequest(from_number=sender, to_number=to, say=spoken.text,
                               voice=spoken.voice, language=spoken.language,
                               repeat=spoken.repeat)
        try:
            call, _ = await self.gateway().place_call(request_, None, scope=f"twilio:{account}",
                                                      account=account)
        except InvalidInput as exc:
            raise _call_error(exc, to, sender) from None
        return _json(call_resource(call, account), 201)

    async def fetch_call(self, request: Request, account: str, sid: str, path: str
                         ) -> Response:
        """GET /Calls/{sid}.json: one of the account's calls."""
        call = None
        if len(sid) <= MAX_SID_CHARS and "\x00" not in sid:
            call = await self.gateway().get_call(sid, account)
        if call is None:
            raise _not_found(path)
        return _json(call_resource(call, account))

    async def list_calls(self, request: Request, account: str) -> Response:
        """GET /Calls.json: the account's calls newest first, in Twilio's list page."""
        return await self._list(request, account, KIND_CALL, "Calls", "calls",
                                lambda c: call_resource(c, account))

    # ---------------------------------------------------------------- lists

    async def _list(self, request: Request, account: str, kind: str, resource: str, key: str,
                    render: Callable[[Message], dict[str, Any]]) -> Response:
        """One page of Twilio's list envelope, filtered by To and From exactly."""
        query = _Form(parse_qsl(request.url.query, keep_blank_values=True))
        query.refuse_nul()
        gateway = self.gateway()
        region = gateway.settings.server.default_region
        to = _number_or_keep(query.first("To"), region)
        sender = _number_or_keep(query.first("From"), region)
        size = _page_size(query.first("PageSize"))
        page = _int_param("Page", query.first("Page") or "0")
        token = query.first("PageToken") or None
        filter_ = MessageFilter(number=to or sender or None, kind=kind, account_id=account)
        found: list[Message] = []
        cursor = token
        # Asking for just what is missing each time: a page never overshoots, and its
        # cursor is exactly where the next page starts.
        while True:
            try:
                batch = await gateway.list_messages(filter_, size - len(found), cursor)
            except InvalidInput:
                raise _bad(400, "PageToken is not one this server gave out.") from None
            found += [m for m in batch.messages
                      if (not to or m.to_number == to) and (not sender or m.from_number == sender)]
            cursor = batch.next_cursor
            if cursor is None or len(found) >= size:
                break
        base = f"{PREFIX}/Accounts/{account}/{resource}.json"
        filters = [(name, value) for name, value in (("To", to), ("From", sender)) if value]

        def uri(page_number: int, page_token: str | None) -> str:
            params = [*filters, ("PageSize", str(size)), ("Page", str(page_number))]
            if page_token:
                params.append(("PageToken", page_token))
            return f"{base}?{urlencode(params)}"

        start = page * size
        return _json({
            key: [render(m) for m in found],
            "page": page, "page_size": size, "start": start,
            "end": start + max(len(found) - 1, 0),
            "uri": uri(page, token), "first_page_uri": uri(0, None),
            "next_page_uri": uri(page + 1, cursor) if cursor else None,
            # Pages are read newest first by an opaque forward cursor: no way back.
            "previous_page_uri": None,
        })


def install_twilio_face(app: FastAPI, gateway: Callable[[], Gateway]) -> None:
    """Serve the Twilio-compatible API under ``/2010-04-01`` of ``app``."""
    app.mount(PREFIX, TwilioFace(gateway))


# ------------------------------------------------------------------ resources


# A call's life in Twilio's words (its Call resource's status).
_CALL_STATUS = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENDING: "queued",
    MessageStatus.SENT: "ringing",
    MessageStatus.DELIVERED: "completed",
}
_CALL_FAILURES = ("busy", "no-answer", "canceled")


def call_status(call: Message) -> str:
    """A call's status as Twilio's Call resource names it."""
    if call.status is MessageStatus.FAILED:
        return call.error_code if call.error_code in _CALL_FAILURES else "failed"
    return _CALL_STATUS.get(call.status, "queued")


def call_resource(call: Message, account_sid: str) -> dict[str, Any]:
    """Twilio's Call resource (the JSON of ``/2010-04-01/.../Calls/{sid}.json``)."""
    uri = f"{PREFIX}/Accounts/{account_sid}/Calls/{call.id}.json"
    base = uri.removesuffix(".json")
    return {
        "sid": call.id, "account_sid": account_sid, "parent_call_sid": None,
        "to": call.to_number, "to_formatted": call.to_number,
        "from": call.from_number, "from_formatted": call.from_number,
        "status": call_status(call), "direction": "outbound-api",
        "date_created": twilio_date(call.created_at),
        "date_updated": twilio_date(call.updated_at),
        "start_time": None, "end_time": None, "duration": None, "price": None,
        "price_unit": "USD", "answered_by": None, "caller_name": None,
        "forwarded_from": None, "group_sid": None, "phone_number_sid": None,
        "queue_time": "0", "trunk_sid": None, "api_version": API_VERSION, "uri": uri,
        "subresource_uris": {"notifications": f"{base}/Notifications.json",
                             "recordings": f"{base}/Recordings.json"},
    }


# ------------------------------------------------------------------ TwiML


@dataclass(frozen=True, slots=True)
class SpokenTwiml:
    """What a call's inline TwiML says: the text, its voice and language, how many times."""

    text: str
    voice: str | None
    language: str | None
    repeat: int


def parse_say_twiml(twiml: str) -> SpokenTwiml:
    """The ``<Say>``s of ``<Response>`` TwiML, or TwilioError (12100/12102) naming why not.

    One text said N times (``loop``, or the same ``<Say>`` N times) is a repeat; different
    texts are spoken one after another with a pause between. ``<Pause>`` is allowed and
    becomes that pause; any other verb is refused rather than silently dropped.
    """
    if len(twiml) > MAX_TWIML_CHARS:
        raise _bad(12100, f"Twiml is {len(twiml)} characters; at most {MAX_TWIML_CHARS} are "
                          "accepted.")
    # No DTD: entity expansion ("billion laughs") and external entities need one.
    if "<!DOCTYPE" in twiml.upper() or "<!ENTITY" in twiml.upper():
        raise _bad(12100, "Document parse failure: Twiml must not hold a DOCTYPE or entity "
                          "declarations.")
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise _bad(12100, f"Document parse failure: Twiml is not valid XML ({exc}).") from None
    if root.tag != "Response":
        raise _bad(12102, "The root element must be Response.")
    says: list[tuple[str, str | None, str | None, int]] = []
    for verb in root:
        if verb.tag == "Pause":
            continue
        if verb.tag != "Say":
            raise _bad(12100, f"smsbridge speaks <Say> only; <{verb.tag}> is not supported.")
        # SSML inside <Say> (<break/>, <emphasis>...) is read as its plain text.
        text = " ".join("".join(verb.itertext()).split())
        if text:
            says.append((text, verb.get("voice"), verb.get("language"),
                         _loop(verb.get("loop"))))
    if not says:
        raise _bad(12100, "Twiml has no <Say> with text to speak.")
    _, voice, language, _ = says[0]
    if len({text for text, *_ in says}) == 1:
        return SpokenTwiml(says[0][0], voice, language,
                           min(sum(loop for *_, loop in says), MAX_REPEAT + 1))
    # Line breaks are spoken as pauses (gateway/service.py).
    spoken = "\n".join("\n".join([text] * loop) for text, _, _, loop in says)
    return SpokenTwiml(spoken, voice, language, 1)


def _loop(value: str | None) -> int:
    """A ``<Say loop>`` as a count; Twilio's 0 ("until hang-up") is the most we repeat."""
    if value is None:
        return 1
    if not value.strip().isdigit():
        raise _bad(12100, f"<Say loop={value!r}> is not a whole number.")
    count = int(value)
    return MAX_REPEAT if count == 0 else min(count, MAX_REPEAT + 1)


# ------------------------------------------------------------------ errors


def _message_error(exc: InvalidInput, to: str, sender: str) -> TwilioError:
    """The Twilio error for a send the gateway refused."""
    field = exc.field
    if isinstance(exc, RecipientOptedOut):
        return _bad(21610, f"Attempt to send to unsubscribed recipient: {exc.reason}")
    if field == "to":
        return _bad(21211, f"The 'To' number {to} is not a valid phone number: {exc.reason}")
    if field == "from" and isinstance(exc, InvalidPhoneNumber):
        return _bad(21212, f"The 'From' number {sender} is not a valid phone number: "
                           f"{exc.reason}")
    if field in ("from", "connection"):
        return _bad(21606, f"The 'From' phone number provided ({sender}) is not a valid "
                           f"message-capable phone number for this account: {exc.reason}")
    if field == "text":
        return _bad(21617, f"The message body is too long: {exc.reason}")
    if field == "media":
        return _bad(21623, f"Number of media files exceeds allowed limit: {exc.reason}")
    if field.startswith("media"):
        return _bad(21620, f"Invalid media URL(s): {exc.reason}")
    if field == "status_callback":
        return _bad(21609, f"Invalid StatusCallback: {exc.reason}")
    return _bad(400, f"Invalid parameter {field}: {exc.reason}")


def _call_error(exc: InvalidInput, to: str, sender: str) -> TwilioError:
    """The Twilio error for a call the gateway refused."""
    if isinstance(exc, RecipientOptedOut):
        return _bad(21610, f"Attempt to call an unsubscribed recipient: {exc.reason}")
    if exc.field == "to":
        return _bad(21211, f"The 'To' number {to} is not a valid phone number: {exc.reason}")
    if exc.field == "from" and isinstance(exc, InvalidPhoneNumber):
        return _bad(21212, f"The 'From' number {sender} is not a valid phone number: "
                           f"{exc.reason}")
    if exc.field in ("from", "connection"):
        return _bad(21210, f"The 'From' number {sender} cannot place calls for this account: "
                           f"{exc.reason}")
    return _bad(21200, f"Invalid call: Twiml <Say> {exc.field}: {exc.reason}")


def _no_service(service: str) -> TwilioError:
    return _bad(21705, f"The Messaging Service {service!r} is invalid: the account has no "
                       "connection of that name.")


# ------------------------------------------------------------------ request input


class _Form:
    """Form or query parameters in order; repeated names (MediaUrl) kept."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def first(self, name: str) -> str:
        """The first value of ``name``, or ""."""
        return next((value for key, value in self.pairs if key == name), "")

    def all(self, name: str) -> list[str]:
        """Every non-empty value of ``name``."""
        return [value for key, value in self.pairs if key == name and value]

    def refuse_nul(self) -> None:
        """TwilioError for a parameter holding NUL, which no number, text or URL holds."""
        for key, value in self.pairs:
            if "\x00" in key or "\x00" in value:
                raise _bad(400, f"Parameter {key.replace(chr(0), '')!r} must not contain NUL.")


async def _read_form(request: Request) -> _Form:
    """The request's ``application/x-www-form-urlencoded`` body, as Twilio's API takes it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type not in ("application/x-www-form-urlencoded", "") or (
            not content_type and body):
        raise _bad(400, "Send the parameters as application/x-www-form-urlencoded, as "
                        "Twilio's API takes them.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise _bad(400, "The form is not valid UTF-8.") from None
    except ValueError:
        raise _bad(400, f"The form has more than {MAX_FORM_FIELDS} fields.") from None
    form = _Form(pairs)
    form.refuse_nul()
    return form


def _number_or_keep(value: str, region: str) -> str:
    """A list filter's number in E.164 when it is one; else as given (it then matches
    nothing, as Twilio's filter does)."""
    if not value:
        return ""
    try:
        return to_e164(value, region, field="number")
    except InvalidInput:
        return value


def _page_size(value: str) -> int:
    size = _int_param("PageSize", value or str(DEFAULT_PAGE_SIZE))
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _bad(400, f"PageSize must be 1 to {MAX_PAGE_SIZE}.")
    return size


def _int_param(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise _bad(400, f"{name} must be a whole number.")
    return int(value)


def _route_path(scope: Scope) -> str:
    """The path below the mount point ("/Accounts/..."), however the server set root_path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.removeprefix(PREFIX) if path.startswith(PREFIX + "/") else path


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() != b"0"
        if name == b"transfer-encoding":
            return True
    return False
