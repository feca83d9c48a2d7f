"""A fake Vonage: the SMS and Voice APIs on 127.0.0.1, and Vonage's (optionally signed) webhooks.

It is an independent model of the carrier, written from shared/providers/vonage.md, and
does not import smsbridge's Vonage provider (so the two cannot share a mistake).

    fake = FakeVonage(signature_secret="s3cret", signature_method="sha256")
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.fail_next("7", "Number barred")        # the next send is refused (HTTP 200, status 7)
    fake.fail_next("1", "Throughput Rate Exceeded")  # ... or throttled
    await fake.fire_inbound(gateway_inbound_url, from_="447700900123", to="447700900456",
                            text="hi")
    await fake.deliver_all()                    # "accepted" + "delivered" receipts per send

    private_pem, public_pem = application_key_pair()      # a Voice application's key pair
    fake = FakeVonage(application_id="aaaa-...", application_public_key=public_pem,
                      signature_secret="s3cret")
    placed = fake.calls[0]                      # a call created through POST /v1/calls
    placed.spoken                               # what its NCCO's talk actions say
    await fake.end_call(placed, "busy")         # started, ringing, busy: JWT-signed events

Run on its own: ``python -m smsbridge.testing.fake_vonage --port 9007``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments
from .fake_base import FakeCarrier, RecordedRequest, WebhookAnswer, fake_parser, send_webhook, serve

# The problem "title" the Voice API gives with each HTTP status (its answers are RFC 7807-ish).
VOICE_TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Low balance",
                403: "Forbidden", 429: "Throttled", 500: "Internal Error",
                503: "Service Unavailable"}
# The events a call sends as it ends each way (Voice API CallStatus values).
CALL_ENDINGS: dict[str, tuple[str, ...]] = {
    "completed": ("started", "ringing", "answered", "completed"),
    "busy": ("started", "ringing", "busy"),
    "timeout": ("started", "ringing", "timeout"),
    "unanswered": ("started", "ringing", "unanswered"),
    "rejected": ("started", "rejected"),
    "failed": ("started", "failed"),
    "cancelled": ("started", "ringing", "cancelled"),
}

DEFAULT_API_KEY = "a1b2c3d4"
DEFAULT_API_SECRET = "VonageFakeSecret01"

# Vonage wants international numbers as digits: no '+', no spaces.
_DIGITS = re.compile(r"[1-9][0-9]{6,14}")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 ]{1,11}")


def vonage_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """The ``sig`` Vonage puts on a webhook: sorted &k=v (& and = as _), MD5+secret or HMAC."""
    signed = ""
    for name in sorted(params):
        if name == "sig":
            continue
        value = params[name].replace("&", "_").replace("=", "_")
        signed += f"&{name}={value}"
    if method == "md5hash":
        return hashlib.md5((signed + secret).encode()).hexdigest()
    digest = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256,
              "sha512": hashlib.sha512}[method]
    return hmac.new(secret.encode(), signed.encode(), digest).hexdigest()


def application_key_pair() -> tuple[str, str]:
    """A new RSA key pair for a Vonage application: (private key PEM, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


def _unpadded_b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json_of_b64url(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def vonage_event_token(secret: str, body: bytes, api_key: str, application_id: str | None
                       ) -> str:
    """The HS256 JWT Vonage puts in a call event's Authorization header."""
    claims = {"iat": int(time.time()), "jti": str(uuid.uuid4()), "iss": "Vonage",
              "payload_hash": hashlib.sha256(body).hexdigest(), "api_key": api_key,
              "application_id": application_id}
    head = _unpadded_b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _unpadded_b64url(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_unpadded_b64url(mac)}"


def _message_id() -> str:
    return secrets.token_hex(8).upper()


def _answer(parts: list[dict[str, str]]) -> JSONResponse:
    """The SMS API's answer: HTTP 200, one entry per part, whatever happened."""
    return JSONResponse({"message-count": str(len(parts)), "messages": parts})


def _refused(status: str, error_text: str, to: str = "") -> JSONResponse:
    part = {"status": status, "error-text": error_text}
    if to:
        part = {"to": to, **part}
    return _answer([part])


@dataclass
class SentMessage:
    """A message the fake accepted (each of its parts has an id; the first names it)."""

    message_ids: list[str]
    from_: str
    to: str
    text: str
    type: str
    callback: str | None
    client_ref: str | None
    status: str = "accepted"

    @property
    def message_id(self) -> str:
        """The id of the first part."""
        return self.message_ids[0]


@dataclass
class Refusal:
    """A queued per-message error: Vonage's status code and error-text."""

    status: str
    error_text: str


@dataclass
class PlacedCall:
    """A call the fake created through the Voice API."""

    uuid: str
    conversation_uuid: str
    from_: str
    to: str
    ncco: list[dict[str, Any]]
    event_url: str | None
    event_method: str
    status: str = "started"

    @property
    def spoken(self) -> list[dict[str, Any]]:
        """The NCCO's talk actions: what the callee hears."""
        return [action for action in self.ncco if action.get("action") == "talk"]


class FakeVonage(FakeCarrier[RecordedRequest, SentMessage, Refusal]):
    """An in-memory Vonage account speaking the real SMS and Voice APIs and webhook formats."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET,
                 *, signature_secret: str | None = None,
                 signature_method: str = "md5hash", application_id: str | None = None,
                 application_public_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.application_id = application_id
        self._application_key = None if application_public_key is None else (
            serialization.load_pem_public_key(application_public_key.encode()))
        self.calls: list[PlacedCall] = []
        # The account's balance and owned numbers (``add_number``), for its account API.
        self.balance = 15.5359
        self.numbers: dict[str, list[str]] = {}
        self.app = Starlette(routes=[Route("/sms/json", self._send, methods=["POST"]),
                                     Route("/v1/calls", self._create_call, methods=["POST"]),
                                     Route("/account/get-balance", self._balance,
                                           methods=["GET"]),
                                     Route("/account/numbers", self._owned_numbers,
                                           methods=["GET"])])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, status: str, error_text: str = "", times: int = 1, *,
                  http_status: int = 200, retry_after: float | None = None,
                  raw_body: str | None = None) -> None:
        """Refuse the next ``times`` sends with this status code (``raw_body``: not JSON)."""
        self._queue_failure(Refusal(status, error_text or f"error {status}"), http_status,
                            times, retry_after, raw_body)

    def fail_next_call(self, http_status: int, detail: str, times: int = 1, *,
                       retry_after: float | None = None) -> None:
        """Refuse the next ``times`` API requests with this Voice API problem answer."""
        self._queue_failure(Refusal(str(http_status), detail), http_status, times,
                            retry_after, None)

    def message(self, message_id: str) -> SentMessage | None:
        """The accepted message one of whose parts has this id, if any."""
        return next((m for m in self.messages if message_id in m.message_ids), None)

    def call(self, call_uuid: str) -> PlacedCall | None:
        """The created call with this uuid, if any."""
        return next((c for c in self.calls if c.uuid == call_uuid), None)

    def _forget_knobs(self) -> None:
        self.calls.clear()

    # --- the SMS API -------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                loaded = json.loads(raw)
            except ValueError:
                loaded = {}
            params = {str(k): str(v) for k, v in loaded.items()} if isinstance(
                loaded, dict) else {}
        else:
            params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        auth_ok = hmac.compare_digest(params.get("api_key", ""), self.api_key) and (
            hmac.compare_digest(params.get("api_secret", ""), self.api_secret))
        recorded = self._keep_request(RecordedRequest(request.method, request.url.path,
                                                      params, auth_ok))
        if not params.get("api_key") or not params.get("api_secret"):
            return _refused("2", "Missing api_key or api_secret")
        if not recorded.auth_ok:
            return _refused("4", "Bad Credentials")
        failed = self._failure_answer(lambda failure: JSONResponse(
            {"message-count": "1", "messages": [{"status": failure.error.status,
                                                 "error-text": failure.error.error_text}]},
            status_code=failure.http_status))
        return failed or self._accept(params)

    def _accept(self, params: dict[str, str]) -> Response:
        """Validate a send the way the SMS API does, and accept it."""
        for name in ("from", "to", "text"):
            if not params.get(name):
                return _refused("2", f"Missing {name} param")
        to, from_, text = params["to"], params["from"], params["text"]
        if not _DIGITS.fullmatch(to):
            return _refused("3", "Invalid to param: digits only, no '+'", to)
        if not (_DIGITS.fullmatch(from_) or _ALPHANUMERIC.fullmatch(from_)):
            return _refused("15", "Illegal Sender Address - rejected", to)
        kind = params.get("type", "text")
        if kind not in ("text", "unicode", "binary"):
            return _refused("3", "Invalid type param", to)
        callback = params.get("callback")
        if callback is not None and not callback.startswith(("http://", "https://")):
            return _refused("23", "Invalid callback url", to)
        segments = count_segments(text)
        if segments.encoding != "GSM-7" and kind != "unicode":
            # Vonage would send it as GSM and mangle it; the fake makes that loud.
            return _refused("3", "Non-GSM text needs type=unicode", to)
        ids = [_message_id() for _ in range(segments.segments)]
        self._keep_message(SentMessage(ids, from_, to, text, kind, callback,
                                       params.get("client-ref")))
        return _answer([{"to": to, "message-id": message_id, "status": "0",
                         "remaining-balance": "15.53590000", "message-price": "0.03330000",
                         "network": "23410"} for message_id in ids])

    # --- the account API ---------------------------------------------------------------

    def add_number(self, msisdn: str, *, features: Sequence[str] = ("VOICE", "SMS")) -> None:
        """Give the account a number (digits with the country code) with these features."""
        self.numbers[msisdn.lstrip("+")] = list(features)

    def _account_read_refused(self, request: Request) -> Response | None:
        """Record a GET of the account API; the 401 that refuses bad credentials."""
        params = dict(request.query_params)
        auth_ok = hmac.compare_digest(params.get("api_key", ""), self.api_key) and (
            hmac.compare_digest(params.get("api_secret", ""), self.api_secret))
        self._keep_request(RecordedRequest(request.method, request.url.path, params, auth_ok))
        if not auth_ok:
            return JSONResponse({"error-code": "401", "error-code-label": "authentication failed"},
                                status_code=401)
        return None

    async def _balance(self, request: Request) -> Response:
        refused = self._account_read_refused(request)
        return refused or JSONResponse({"value": self.balance, "autoReload": False})

    async def _owned_numbers(self, request: Request) -> Response:
        """One page of owned numbers: ``index`` from 1, ``size`` at most 100."""
        refused = self._account_read_refused(request)
        if refused is not None:
            return refused
        size = min(int(request.query_params.get("size") or 10), 100)
        index = int(request.query_params.get("index") or 1)
        numbers = list(self.numbers.items())
        page = numbers[(index - 1) * size:index * size]
        return JSONResponse({"count": len(numbers), "numbers": [
            {"country": "GB" if msisdn.startswith("44") else "US", "msisdn": msisdn,
             "type": "mobile-lvn", "features": features, "moHttpUrl": ""}
            for msisdn, features in page]})

    # --- the Voice API -----------------------------------------------------------------

    def _application_token_ok(self, authorization: str) -> bool:
        """Whether ``authorization`` is a live RS256 JWT of this account's application."""
        scheme, _, token = authorization.partition(" ")
        parts = token.strip().split(".")
        key = self._application_key
        if scheme != "Bearer" or len(parts) != 3 or not isinstance(key, rsa.RSAPublicKey):
            return False
        try:
            header, claims = _json_of_b64url(parts[0]), _json_of_b64url(parts[1])
            key.verify(base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)),
                       f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return False
        now = time.time()
        return (isinstance(header, dict) and header.get("alg") == "RS256"
                and isinstance(claims, dict)
                and claims.get("application_id") == self.application_id
                and isinstance(claims.get("exp"), int) and claims["exp"] > now
                and isinstance(claims.get("iat"), int) and claims["iat"] <= now + 60)

    async def _create_call(self, request: Request) -> Response:
        try:
            loaded = json.loads(await request.body() or b"{}")
        except ValueError:
            loaded = None
        body = loaded if isinstance(loaded, dict) else {}
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, body,
            self._application_token_ok(request.headers.get("authorization", ""))))
        if not recorded.auth_ok:
            return _problem(401, "You did not provide correct credentials.")
        if loaded is None:
            return _problem(400, "Invalid JSON")
        failed = self._failure_answer(
            lambda failure: _problem(failure.http_status, failure.error.error_text))
        return failed or self._accept_call(body)

    def _accept_call(self, body: dict[str, Any]) -> Response:
        """Validate a create-call request the way the Voice API does, and start the call."""
        to, from_ = body.get("to"), body.get("from")
        if not (isinstance(to, list) and len(to) == 1 and isinstance(to[0], dict)
                and to[0].get("type") == "phone"
                and _DIGITS.fullmatch(str(to[0].get("number", "")))):
            return _problem(400, "to: one phone endpoint whose number is digits, no '+'")
        if not (isinstance(from_, dict) and from_.get("type") == "phone"
                and _DIGITS.fullmatch(str(from_.get("number", "")))):
            return _problem(400, "from: a phone endpoint whose number is digits, no '+'")
        ncco = body.get("ncco")
        if not (isinstance(ncco, list) and ncco and all(isinstance(a, dict) for a in ncco)):
            return _problem(400, "Invalid NCCO: a non-empty list of actions is required")
        for action in ncco:
            if action.get("action") == "talk" and not action.get("text"):
                return _problem(400, "Invalid NCCO: talk action requires text")
            if "style" in action and not isinstance(action["style"], int):
                return _problem(400, "Invalid NCCO: style must be an integer")
        event_url = body.get("event_url")
        if event_url is not None and not (isinstance(event_url, list) and len(event_url) == 1
                                          and str(event_url[0]).startswith(("http://",
                                                                            "https://"))):
            return _problem(400, "event_url: a list of one URL")
        placed = PlacedCall(str(uuid.uuid4()), f"CON-{uuid.uuid4()}", from_["number"],
                            to[0]["number"], ncco, event_url[0] if event_url else None,
                            str(body.get("event_method") or "POST"))
        with self._lock:
            self.calls.append(placed)
        return JSONResponse({"uuid": placed.uuid, "status": "started", "direction": "outbound",
                             "conversation_uuid": placed.conversation_uuid}, status_code=201)

    async def fire_call_event(self, placed: PlacedCall, status: str, *,
                              detail: str | None = None, signed: bool = True,
                              bad_signature: bool = False) -> WebhookAnswer:
        """POST one call event to the call's event_url, JWT-signed when a secret is set."""
        if placed.event_url is None:
            raise ValueError("the call was created without an event_url")
        placed.status = status
        event: dict[str, Any] = {"from": placed.from_, "to": placed.to, "uuid": placed.uuid,
                                 "conversation_uuid": placed.conversation_uuid,
                                 "status": status, "direction": "outbound"}
        if status == "completed":
            event.update({"duration": "14", "rate": "0.01270000", "price": "0.00296333",
                          "network": "302720"})
        if detail:
            event["detail"] = detail
        event["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Vonage-Voice"}
        if signed and self.signature_secret is not None:
            token = vonage_event_token(self.signature_secret, body, self.api_key,
                                       self.application_id)
            if bad_signature:
                head, payload, signature = token.split(".")
                token = f"{head}.{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
            headers["Authorization"] = f"Bearer {token}"
        return await send_webhook(placed.event_method, placed.event_url, data=body,
                                  headers=headers)

    async def end_call(self, placed: PlacedCall, ending: str = "completed", *,
                       signed: bool = True, bad_signature: bool = False) -> list[WebhookAnswer]:
        """Fire the events of a call that ends as ``ending`` (CALL_ENDINGS), in order."""
        return [await self.fire_call_event(placed, status, signed=signed,
                                           bad_signature=bad_signature)
                for status in CALL_ENDINGS[ending]]

    # --- webhooks fired at the gateway ---------------------------------------------------

    def _signed(self, params: dict[str, str], signed: bool, bad_signature: bool
                ) -> dict[str, str]:
        if not signed or self.signature_secret is None:
            return params
        params = {**params, "timestamp": str(int(time.time())),
                  "nonce": secrets.token_hex(16)}
        sig = vonage_signature(self.signature_secret, self.signature_method, params)
        if bad_signature:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        return {**params, "sig": sig}

    def inbound_params(self, *, from_: str, to: str, text: str, message_id: str | None = None,
                       concat: tuple[str, int, int] | None = None) -> dict[str, str]:
        """An inbound SMS webhook's fields; ``concat`` is (ref, total, part)."""
        params = {"msisdn": from_.lstrip("+"), "to": to.lstrip("+"),
                  "messageId": message_id or _message_id(), "text": text,
                  "type": "text" if count_segments(text).encoding == "GSM-7" else "unicode",
                  "keyword": (text.split() or [""])[0].upper(),
                  "message-timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        if concat is not None:
            ref, total, part = concat
            params.update({"concat": "true", "concat-ref": ref, "concat-total": str(total),
                           "concat-part": str(part)})
        return params

    async def fire_inbound(self, url: str, *, from_: str, to: str, text: str,
                           message_id: str | None = None,
                           concat: tuple[str, int, int] | None = None, method: str = "POST",
                           as_json: bool = False, signed: bool = True,
                           bad_signature: bool = False) -> WebhookAnswer:
        """Send an inbound-SMS webhook to ``url`` (GET query, POST form or POST JSON)."""
        params = self._signed(self.inbound_params(from_=from_, to=to, text=text,
                                                  message_id=message_id, concat=concat),
                              signed, bad_signature)
        return await self._fire(url, params, method, as_json)

    async def fire_receipt(self, url: str, message_id: str, status: str, err_code: str = "0",
                           *, signed: bool = True, bad_signature: bool = False
                           ) -> WebhookAnswer:
        """Send a delivery receipt for ``message_id`` and record the status on it."""
        sent = self.message(message_id)
        params = {"messageId": message_id, "status": status, "err-code": err_code,
                  "network-code": "23410", "price": "0.03330000",
                  "scts": datetime.now(UTC).strftime("%y%m%d%H%M"),
                  "message-timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        if sent is not None:
            sent.status = status
            params.update({"msisdn": sent.to, "to": sent.from_})
            if sent.client_ref:
                params["client-ref"] = sent.client_ref
        return await self._fire(url, self._signed(params, signed, bad_signature), "POST",
                                False)

    async def deliver_all(self, statuses: Sequence[str] = ("accepted", "delivered"),
                          ) -> list[WebhookAnswer]:
        """Fire ``statuses`` in order for every accepted message that gave a callback."""
        answers = []
        for sent in list(self.messages):
            if sent.callback:
                for status in statuses:
                    answers.append(await self.fire_receipt(sent.callback, sent.message_id,
                                                           status))
        return answers

    async def _fire(self, url: str, params: dict[str, str], method: str, as_json: bool
                    ) -> WebhookAnswer:
        headers = {"User-Agent": "Nexmo/MessagingHUB/v1.0"}
        if method.upper() == "GET":
            separator = "&" if "?" in url else "?"
            return await send_webhook("GET", url + separator + urlencode(params), data=None,
                                      headers=headers)
        if as_json:
            headers["Content-Type"] = "application/json"
            return await send_webhook("POST", url, data=json.dumps(params), headers=headers)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await send_webhook("POST", url, data=urlencode(params), headers=headers)


def _problem(http_status: int, detail: str) -> JSONResponse:
    """The Voice API's error answer."""
    return JSONResponse({"type": "https://developer.nexmo.com/api-errors/voice",
                         "title": VOICE_TITLES.get(http_status, "Error"), "detail": detail,
                         "instance": secrets.token_hex(16)}, status_code=http_status)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Vonage account with uvicorn."""
    parser = fake_parser("Vonage SMS and Voice API", 9007)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key clients must use")
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET,
                        help="API secret clients must use")
    parser.add_argument("--signature-secret", default=None,
                        help="sign the fake's webhooks with this secret")
    parser.add_argument("--signature-method", default="md5hash",
                        choices=["md5hash", "md5", "sha1", "sha256", "sha512"])
    parser.add_argument("--application-id", default=None,
                        help="the Voice application whose JWTs POST /v1/calls accepts")
    parser.add_argument("--application-public-key", default=None, metavar="PEM_FILE",
                        help="that application's public key (PEM file)")
    args = parser.parse_args(argv)
    public_key = None
    if args.application_public_key:
        with open(args.application_public_key, encoding="utf-8") as pem:
            public_key = pem.read()
    fake = FakeVonage(args.api_key, args.api_secret, signature_secret=args.signature_secret,
                      signature_method=args.signature_method,
                      application_id=args.application_id, application_public_key=public_key)
    serve(fake.app, args.host, args.port,
          f"fake Vonage on http://{args.host}:{args.port} (api_key {fake.api_key})")


if __name__ == "__main__":
    main()
