"""A fake Peerless Network messaging account: its send URL on 127.0.0.1, its webhooks fired.

It is an independent model of the carrier, written from shared/providers/peerless.md and
jambonz's docs (the send URL's path and the send answer), and does not import smsbridge's
Peerless provider (so the two cannot share a mistake). What the fake refuses is what the
plug-in's history says Peerless refused: a ``from`` without its plus, a missing
``ccRecipients``, an empty ``text``, and fields it does not know. The error bodies
(``{"responseText": "ERROR. ..."}``, shaped like the success answer) are an assumption.

    fake = FakePeerless()
    server = start_server(fake.app)        # url: server.url + fake.send_path
    fake.opted_out.add("+14385550199")     # sends to it are refused with a 400
    fake.fail_next(503, retry_after=5)     # the next send is refused with a 503
    answer = await fake.fire_inbound(gateway_inbound_url, from_="+14385550123",
                                     recipients=["+15145550100"], text="ARM SV")
    peerless_receipt(answer)               # the receipt, or None if Peerless would balk

Run on its own: ``python -m smsbridge.testing.fake_peerless --port 9011``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_base import (
    FakeCarrier,
    RecordedRequest,
    WebhookAnswer,
    basic_auth_ok,
    fake_parser,
    send_webhook,
)
from .fake_base import serve as serve_app

DEFAULT_ACCOUNT = "300417"
DEFAULT_USERNAME = "acme-sms"
DEFAULT_PASSWORD = "Pe3rl3ssM3ssag1ngPassw0rd"
ACCEPTED_TEXT = "OK. Message Submitted Successfully"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_FIELDS = frozenset({"from", "recipients", "ccRecipients", "text", "mediaURL"})


@dataclass
class SentMessage:
    """A message the fake accepted (Peerless gives it no id that anyone sees)."""

    from_: str
    recipients: list[str]
    cc_recipients: list[str]
    text: str | None
    media_urls: list[str]


def _refusal(status: int, text: str) -> JSONResponse:
    return JSONResponse({"responseText": f"ERROR. {text}"}, status_code=status)


def peerless_receipt(answer: WebhookAnswer) -> str | None:
    """The receipt Peerless reads from the gateway's answer; None for one it would not take.

    Peerless requires a 200 with a JSON body holding the receipt (jambonz's README).
    """
    status, headers, body = answer
    if status != 200 or not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    receipt = document.get("receipt") if isinstance(document, dict) else None
    return receipt if isinstance(receipt, str) and receipt else None


class FakePeerless(FakeCarrier[RecordedRequest, SentMessage, str]):
    """An in-memory Peerless messaging account answering at its send URL."""

    def __init__(self, username: str | None = DEFAULT_USERNAME,
                 password: str | None = DEFAULT_PASSWORD, *, account: str = DEFAULT_ACCOUNT,
                 opted_out: Iterable[str] = ()) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.account = account
        self.opted_out: set[str] = set(opted_out)
        self.app = Starlette(routes=[Route(
            "/partners/messageReceiving/{account}/submitMessage", self._send, methods=["POST"])])

    @property
    def send_path(self) -> str:
        """The path of this account's send URL."""
        return f"/partners/messageReceiving/{self.account}/submitMessage"

    # --- knobs -------------------------------------------------------------------------

    def fail_next(self, http_status: int, text: str = "", times: int = 1,
                  retry_after: float | None = None, *, raw_body: str | None = None) -> None:
        """Answer the next ``times`` sends with this error (``raw_body``: a non-JSON body)."""
        self._queue_failure(text or f"HTTP {http_status}", http_status, times, retry_after,
                            raw_body)

    def _forget_knobs(self) -> None:
        self.opted_out.clear()

    # --- the send URL ----------------------------------------------------------------------

    def _auth_ok(self, request: Request) -> bool:
        if self.username is None or self.password is None:
            return True  # an account whose URL alone is the credential
        return basic_auth_ok(request, self.username, self.password)

    async def _send(self, request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
        except ValueError:
            body = None
        recorded = self._keep_request(RecordedRequest(
            request.method, request.url.path, body if isinstance(body, dict) else {},
            self._auth_ok(request)))
        if request.path_params["account"] != self.account:
            return _refusal(404, "Unknown account")
        if not recorded.auth_ok:
            return _refusal(401, "Authentication failed")
        failed = self._failure_answer(lambda failure: _refusal(failure.http_status,
                                                               failure.error))
        if failed:
            return failed
        if not isinstance(body, dict):
            return _refusal(400, "Body must be a JSON object")
        return self._accept(body)

    def _accept(self, body: dict[str, Any]) -> Response:
        """Validate a send as the plug-in's history says Peerless does, and keep it."""
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            return _refusal(400, f"Unknown field(s): {', '.join(unknown)}")
        from_, recipients = body.get("from"), body.get("recipients")
        cc, text, media = body.get("ccRecipients"), body.get("text"), body.get("mediaURL")
        if not isinstance(from_, str) or not _E164.fullmatch(from_):
            return _refusal(400, f"Invalid from {from_!r}: E.164 with a leading + is required")
        if (not isinstance(recipients, list) or not recipients
                or not all(isinstance(n, str) and _E164.fullmatch(n) for n in recipients)):
            return _refusal(400, "recipients must be a non-empty list of E.164 numbers")
        if not isinstance(cc, list):
            return _refusal(400, "ccRecipients is required (a list)")
        if "text" in body and (not isinstance(text, str) or not text):
            return _refusal(400, "text must be a non-empty string when present")
        if "mediaURL" in body and (
                not isinstance(media, list) or not media
                or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                           for u in media)):
            return _refusal(400, "mediaURL must be a non-empty list of http(s) URLs")
        if text is None and media is None:
            return _refusal(400, "text or mediaURL is required")
        refused = [n for n in recipients if n in self.opted_out]
        if refused:
            return _refusal(400, f"Recipient {refused[0]} has opted out")
        self._keep_message(SentMessage(from_, list(recipients), list(cc), text,
                                       list(media or [])))
        return JSONResponse({"responseText": ACCEPTED_TEXT})

    # --- webhooks fired at the gateway ---------------------------------------------------

    @staticmethod
    def inbound_document(*, from_: str, recipients: Sequence[str],
                         cc_recipients: Sequence[str] = (), text: str | None = "",
                         media_url: str | None = None,
                         content_id: str | None = None) -> dict[str, Any]:
        """An inbound SMS/MMS body as Peerless posts it (one media URL, as a string)."""
        return {"from": from_, "recipients": list(recipients),
                "ccRecipients": list(cc_recipients), "text": text, "mediaURL": media_url,
                "contentId": content_id}

    async def fire_inbound(self, url: str, *, from_: str, recipients: Sequence[str],
                           cc_recipients: Sequence[str] = (), text: str | None = "",
                           media_url: str | None = None,
                           content_id: str | None = None) -> WebhookAnswer:
        """POST an inbound message to ``url``; the gateway's status, headers and body."""
        document = self.inbound_document(from_=from_, recipients=recipients,
                                         cc_recipients=cc_recipients, text=text,
                                         media_url=media_url, content_id=content_id)
        return await send_webhook("POST", url, data=json.dumps(document),
                                  headers={"Content-Type": "application/json"})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Peerless messaging account with uvicorn."""
    parser = fake_parser("Peerless send URL", 9014)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT, help="account number in the URL")
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="HTTP Basic user name")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="HTTP Basic password")
    args = parser.parse_args(argv)
    fake = FakePeerless(args.username, args.password, account=args.account)
    base = f"http://{args.host}:{args.port}"
    serve_app(fake.app, args.host, args.port,
              f"fake Peerless: url = {base}{fake.send_path} (user {fake.username})")


if __name__ == "__main__":
    main()
