"""API keys, checked from the request's headers before anything reads its body; and the
gateway service the routes act through.

FastAPI reads and parses a request's body before it runs any dependency, so a key
checked in a dependency alone lets a client without a key make the gateway read and
parse up to ``max_body_bytes`` of JSON per request. ``ApiKeyGate`` runs in front of
the framework instead and refuses such requests from their headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import StoreUnavailable
from ..gateway.service import Gateway
from ..store.base import ApiKeyRecord
from .problems import problem

log = logging.getLogger("smsbridge.api")

# Where the gate leaves the key record for the routes (an ASGI scope may carry extra keys).
SCOPE_KEY = "smsbridge.api_key"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsbridge"'}
NO_KEY = "send an API key as 'Authorization: Bearer sbk_...'"
WRONG_KEY = "the API key is wrong or revoked"

# Documents the scheme in /openapi.json (the Authorize button of /docs); the gate enforces it.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="apiKey", bearerFormat="sbk_...",
    description="An API key from `smsbridge keys create`, as `Authorization: Bearer sbk_...`.")


class ApiKeyGate:
    """Answers 401 to any request under ``prefix`` without a live API key, body unread."""

    def __init__(self, app: ASGIApp, gateway: Callable[[], Gateway], prefix: str = "/v1/"
                 ) -> None:
        self.app = app
        self.gateway = gateway
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        authorization = ""
        has_body = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                has_body = value.strip() != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if authorization[:7].lower() != "bearer ":
            await self._refuse(NO_KEY, has_body, scope, receive, send)
            return
        try:
            record = await self.gateway().authenticate(authorization[7:].strip())
        except StoreUnavailable as exc:
            await problem(503, "store-unavailable", "Store unavailable", exc.reason,
                          headers={"Retry-After": "5"})(scope, receive, send)
            return
        if record is None:
            await self._refuse(WRONG_KEY, has_body, scope, receive, send)
            return
        scope[SCOPE_KEY] = record
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(detail: str, has_body: bool, scope: Scope, receive: Receive, send: Send
                      ) -> None:
        headers = dict(CHALLENGE)
        if has_body:
            # The body stays unread: closing the connection spares reading it to find the
            # next request.
            headers["Connection"] = "close"
        await problem(401, "unauthorized", "Unauthorized", detail,
                      headers=headers)(scope, receive, send)


async def api_key(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> ApiKeyRecord:
    """The API key record the gate checked for this request."""
    record: ApiKeyRecord | None = request.scope.get(SCOPE_KEY)
    if record is None:  # a route outside the gate's prefix asked for a key
        raise StarletteHTTPException(401, NO_KEY, headers=CHALLENGE)
    return record


Auth = Annotated[ApiKeyRecord, Depends(api_key)]


def running_gateway(request: Request) -> Gateway:
    """The gateway service of the running app, which every route acts through."""
    gateway: Gateway | None = request.app.state.runtime.gateway
    assert gateway is not None, "runtime not started"
    return gateway


GatewayDep = Annotated[Gateway, Depends(running_gateway)]
