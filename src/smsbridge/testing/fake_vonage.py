"""A fake Vonage: the SMS API on 127.0.0.1, and Vonage's (optionally signed) webhooks.

It is an independent model of the carrier, written from shared/providers/vonage.md, and
does not import smsbridge's Vonage provider (so the two cannot share a mistake).

    fake = FakeVonage(signature_secret="s3cret", signature_method="sha256")
    server = start_server(fake.app)             # base_url for the provider: server.url
    fake.fail_next("7", "Number barred")        # the next send is refused (HTTP 200, status 7)
    fake.fail_next("1", "Throughput Rate Exceeded")  # ... or throttled
    await fake.fire_inbound(gateway_inbound_url, from_="447700900123", to="447700900456",
                            text="hi")
    await fake.deliver_all()                    # "accepted" + "delivered" receipts per send

Run on its own: ``python -m smsbridge.testing.fake_vonage --port 9007``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.segments import count_segments
from .fake_base import FakeCarrier, RecordedRequest, WebhookAnswer, send_webhook, serve

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


class FakeVonage(FakeCarrier[RecordedRequest, SentMessage, Refusal]):
    """An in-memory Vonage account speaking the real SMS API and webhook formats."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET,
                 *, signature_secret: str | None = None,
                 signature_method: str = "md5hash") -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.app = Starlette(routes=[Route("/sms/json", self._send, methods=["POST"])])

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, status: str, error_text: str = "", times: int = 1, *,
                  http_status: int = 200, retry_after: float | None = None,
                  raw_body: str | None = None) -> None:
        """Refuse the next ``times`` sends with this status code (``raw_body``: not JSON)."""
        self._queue_failure(Refusal(status, error_text or f"error {status}"), http_status,
                            times, retry_after, raw_body)

    def message(self, message_id: str) -> SentMessage | None:
        """The accepted message one of whose parts has this id, if any."""
        return next((m for m in self.messages if message_id in m.message_ids), None)

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


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Vonage account with uvicorn."""
    parser = argparse.ArgumentParser(description="A fake Vonage SMS API for smsbridge")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9007, help="port to listen on")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key clients must use")
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET,
                        help="API secret clients must use")
    parser.add_argument("--signature-secret", default=None,
                        help="sign the fake's webhooks with this secret")
    parser.add_argument("--signature-method", default="md5hash",
                        choices=["md5hash", "md5", "sha1", "sha256", "sha512"])
    args = parser.parse_args(argv)
    fake = FakeVonage(args.api_key, args.api_secret, signature_secret=args.signature_secret,
                      signature_method=args.signature_method)
    serve(fake.app, args.host, args.port,
          f"fake Vonage on http://{args.host}:{args.port} (api_key {fake.api_key})")


if __name__ == "__main__":
    main()
