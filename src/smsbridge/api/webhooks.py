"""Carrier webhook endpoints as a bare ASGI app in front of the REST API.

Carriers call these at the highest rates the gateway sees, so they skip the
framework's middleware and routing: measured on this project's machines, the
FastAPI stack alone cost more than the webhook's own work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import (
    InvalidInput,
    MalformedWebhook,
    ProviderError,
    StoreUnavailable,
    WebhookRejected,
)
from ..gateway.service import Gateway
from ..providers.base import Reply, WebhookRequest
from .limits import BodyTooLarge
from .problems import problem

log = logging.getLogger("smsbridge.api")

# /v1/carriers/{connection}/{token}/inbound, .../status, and .../calls/{call_id}/answer (where
# a carrier that fetches a call's instructions gets them).
WEBHOOK_PATH = re.compile(r"^/v1/carriers/([A-Za-z0-9_-]{1,64})/([^/]{1,256})/"
                          r"(inbound|status|calls/([A-Za-z0-9_]{1,40})/answer)$")


class CarrierWebhooks:
    """Serves the carrier webhook paths itself; hands everything else to ``api``."""

    def __init__(self, api: ASGIApp, gateway: Callable[[], Gateway], base_url: str,
                 max_bytes: int) -> None:
        self.api = api
        self.gateway = gateway
        self.base_url = base_url
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = WEBHOOK_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.api(scope, receive, send)
            return
        if scope["method"] not in ("GET", "POST"):
            await problem(405, "method-not-allowed", "Method not allowed",
                          "carrier webhooks take GET or POST")(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            await problem(413, "body-too-large", "Request body too large",
                          f"the body is over the limit of {self.max_bytes} bytes"
                          )(scope, receive, send)
            return
        connection, token, kind, call_id = match.groups()
        raw_query = scope.get("query_string", b"").decode("latin-1")
        # Carriers sign the URL they called: the public URL, not the one behind a proxy.
        url = self.base_url + scope["path"]
        if raw_query:
            url += "?" + raw_query
        request = WebhookRequest(
            method=scope["method"], url=url,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            query=parse_qsl(raw_query, keep_blank_values=True), body=body)
        reply = await self._dispatch(connection, token, kind, call_id, request)
        if isinstance(reply, Reply):
            await send({"type": "http.response.start", "status": reply.status,
                        "headers": [(b"content-type", reply.content_type.encode()),
                                    (b"content-length", str(len(reply.body)).encode())]})
            await send({"type": "http.response.body", "body": reply.body})
        else:
            await reply(scope, receive, send)

    async def _dispatch(self, connection: str, token: str, kind: str, call_id: str | None,
                        request: WebhookRequest) -> Reply | ASGIApp:
        gateway = self.gateway()
        try:
            if call_id is not None:
                kind = "call answer"
                answer = await gateway.call_instructions(connection, token, call_id, request)
                if answer is None:
                    return problem(404, "not-found", "Not found",
                                   f"no call {call_id} on connection {connection}")
                return answer
            if kind == "status":
                reply, _ = await gateway.receive_status(connection, token, request)
            else:
                reply, _ = await gateway.receive_inbound(connection, token, request)
            return reply
        except WebhookRejected as exc:
            log.warning("rejected %s webhook for %r: %s", kind, connection, exc.reason)
            return problem(403, "webhook-rejected", "Webhook rejected", exc.reason)
        except (MalformedWebhook, InvalidInput) as exc:
            log.warning("malformed %s webhook on %r: %s", kind, connection, exc)
            return problem(400, "malformed-webhook", "Malformed webhook", str(exc))
        except ProviderError as exc:
            # Nothing was stored; a non-2xx makes the carrier send it again later.
            log.warning("could not complete %s webhook on %r: %s", kind, connection, exc.reason)
            return problem(503, "carrier-unavailable", "Carrier unavailable", exc.reason,
                           headers={"Retry-After": "60"})
        except StoreUnavailable as exc:
            # Nothing was stored; the carrier's retry will find the store back.
            log.error("could not store %s webhook on %r: %s", kind, connection, exc.reason)
            return problem(503, "store-unavailable", "Store unavailable", exc.reason,
                           headers={"Retry-After": "60"})
        except Exception:
            log.exception("%s webhook on %r failed unexpectedly", kind, connection)
            return problem(500, "internal", "Internal error",
                           "the gateway failed unexpectedly; see its log")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit()
                                              or int(value) > self.max_bytes):
                raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
