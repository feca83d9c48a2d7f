"""An app that receives smsbridge's webhooks: records each request, fails on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class ReceivedWebhook:
    """One request as the app saw it."""

    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class WebhookReceiver:
    """Answers ``fail_first`` requests with ``fail_status``, then 200."""

    fail_first: int = 0
    fail_status: int = 503
    received: list[ReceivedWebhook] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        """The ASGI app (POST /hook)."""

        async def hook(request: Request) -> Response:
            body = await request.body()
            status = self.fail_status if len(self.received) < self.fail_first else 200
            self.received.append(ReceivedWebhook(dict(request.headers), body, status))
            return Response(b"", status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
