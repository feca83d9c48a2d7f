"""A stand-in for the gateway's webhook endpoints, for a fake carrier's round trips over HTTP.

It verifies and parses each webhook with the provider under test, remembers what came,
and answers what the provider says the carrier expects (403 forged, 400 malformed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsbridge.core.errors import MalformedWebhook, WebhookRejected
from smsbridge.providers.base import WebhookRequest


class WebhookReceiver:
    """Inbound webhooks at ``inbound_path``, status callbacks at ``status_path``."""

    def __init__(self, provider: Any, inbound_path: str, status_path: str, *,
                 inbound_methods: Sequence[str] = ("POST",)) -> None:
        self.provider = provider
        self.public_base: str | None = None  # None: trust the URL the request arrived on
        self.inbound: list[Any] = []
        self.statuses: list[Any] = []
        self.app = Starlette(routes=[
            Route(inbound_path, self.on_inbound, methods=list(inbound_methods)),
            Route(status_path, self.on_status, methods=["POST"]),
        ])

    def clear(self) -> None:
        """Forget what came, and trust the URL requests arrive on again."""
        self.public_base = None
        self.inbound.clear()
        self.statuses.clear()

    async def _webhook(self, request: Request) -> WebhookRequest:
        url = str(request.url)
        if self.public_base is not None:  # behind a proxy: rebuild the public URL
            url = self.public_base + request.url.path + (
                f"?{request.url.query}" if request.url.query else "")
        return WebhookRequest(request.method, url, {k.lower(): v for k, v in
                                                    request.headers.items()},
                              list(request.query_params.multi_items()), await request.body())

    async def on_inbound(self, request: Request) -> Response:
        """Verify and parse an inbound webhook; keep its messages."""
        webhook = await self._webhook(request)
        try:
            self.provider.verify(webhook)
            messages = self.provider.parse_inbound(webhook)
        except WebhookRejected as exc:
            return Response(exc.reason, 403)
        except MalformedWebhook as exc:
            return Response(exc.reason, 400)
        self.inbound.extend(messages)
        reply = self.provider.inbound_reply(messages)
        return Response(reply.body, reply.status, media_type=reply.content_type)

    async def on_status(self, request: Request) -> Response:
        """Verify and parse a status callback; keep its updates."""
        webhook = await self._webhook(request)
        try:
            self.provider.verify(webhook)
            updates = self.provider.parse_status(webhook)
        except WebhookRejected as exc:
            return Response(exc.reason, 403)
        self.statuses.extend(updates)
        reply = self.provider.status_reply(updates)
        return Response(reply.body, reply.status, media_type=reply.content_type)
