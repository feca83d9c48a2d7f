"""The ASGI application factory: REST API, carrier webhook endpoints and health."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from ..core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SecretKeyError,
    StoreUnavailable,
)
from ..core.messages import KIND_CALL, Direction, MessageStatus
from ..gateway.rule_actions import rule_report
from ..gateway.runtime import Runtime
from ..gateway.service import CallRequest, Gateway, MediaInput, SendRequest
from ..store.base import MessageFilter
from .auth import ApiKeyGate, Auth
from .docs import install_docs, install_openapi
from .inputs import read_model, refuse_nul
from .jambonz_face import install_jambonz_face
from .limits import BodySizeLimit, BodyTooLarge
from .models import (
    PROBLEM_RESPONSES,
    TOO_LARGE,
    CallIn,
    CallListOut,
    CallOut,
    ConnectionListOut,
    DeliveryListOut,
    MessageDetailOut,
    MessageListOut,
    MessageOut,
    Problem,
    SendIn,
)
from .optouts import install_optouts
from .problems import conflict, invalid, problem
from .server import UrlLengthLimit
from .tenants import BODY_MODELS, install_tenants
from .twilio_face import install_twilio_face
from .webhooks import CarrierWebhooks

log = logging.getLogger("smsbridge.api")

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such message"}}
# The body is read by the route itself (after the API key is checked, see auth.py).
SEND_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SendIn"}}}}}
CALL_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/CallIn"}}}}}
CALL_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such call"}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status_code=status,
                    media_type="application/json", headers=headers)


def _queued(data: dict[str, object], location: str, created: bool) -> Response:
    """202 with what was queued; a replay of an Idempotency-Key says so in a header."""
    headers = {"Location": location}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return _json(data, 202, headers)


def create_app(runtime: Runtime) -> ASGIApp:
    """Build the ASGI app around ``runtime``, which the app's lifespan starts and stops.

    Carrier webhooks are served by a bare ASGI layer; everything else by FastAPI. Serve it
    with ``uvicorn_options()`` (api/server.py) so that an over-long URL gets a problem too.
    """
    settings = runtime.settings
    base_url = settings.server.base_url

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="smsbridge",
        version="0.1.0",
        summary="One API and one webhook format in front of every SMS/MMS carrier.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from local assets
        redoc_url=None,  # ReDoc loads from a CDN, which a LAN gateway cannot reach
        dependencies=[Depends(refuse_nul)],
    )
    install_openapi(app, [SendIn, CallIn, *BODY_MODELS])
    install_docs(app)
    install_optouts(app)
    install_tenants(app)
    install_jambonz_face(app)
    app.state.runtime = runtime

    def gateway() -> Gateway:
        assert runtime.gateway is not None, "runtime not started"
        return runtime.gateway

    install_twilio_face(app, gateway)

    # ---- errors -> problem documents
    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> Response:
        return invalid(exc.field, exc.reason)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> Response:
        # Another account's thing is answered exactly like one that does not exist.
        return problem(404, "not-found", "Not found", str(exc))

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> Response:
        return problem(403, "forbidden", "Forbidden", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> Response:
        return conflict(exc.field, exc.reason)

    @app.exception_handler(SecretKeyError)
    async def _secret_key(_: Request, exc: SecretKeyError) -> Response:
        # The message says which key is missing or wrong, never a secret.
        log.error("secret key: %s", exc)
        return problem(503, "secret-key", "Secret key unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header")]
        field = ".".join(loc) or "body"
        reason = str(err.get("msg", "is invalid"))
        if err.get("type") == "missing":
            reason = "is required"
        elif err.get("type") == "extra_forbidden":
            reason = "is not a known field"
        elif err.get("type") == "json_invalid":
            field, reason = "body", "is not valid JSON"
        return invalid(field, reason)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> Response:
        return problem(413, "body-too-large", "Request body too large",
                       f"the body is over the limit of {settings.server.max_body_bytes} bytes",
                       headers={"Connection": "close"})

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(_: Request, exc: StoreUnavailable) -> Response:
        log.error("store unavailable: %s", exc.reason)
        return problem(503, "store-unavailable", "Store unavailable", exc.reason,
                       headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not found",
                  405: "Method not allowed", 413: "Request body too large"}
        return problem(exc.status_code, titles.get(exc.status_code, "error").lower()
                       .replace(" ", "-"), titles.get(exc.status_code, "Error"),
                       str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return problem(500, "internal", "Internal error",
                       "the gateway failed unexpectedly; see its log")

    # ---- health
    @app.get("/healthz", tags=["health"],
             summary="200 when the store answers and takes writes, and the worker runs",
             responses={503: {"description": "unhealthy; the body says why"}})
    async def healthz() -> Response:
        store = runtime.store
        try:
            await store.ping()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            # StoreUnavailable carries a one-line reason; other errors are named by type.
            why = getattr(exc, "reason", None) or type(exc).__name__
            return _json({"status": "unhealthy", "store": f"unreachable: {why}",
                          "worker": runtime.workers_alive()}, 503)
        # While writes fail, this probes with a write, so health recovers without user traffic.
        failure = await store.recheck_writes()
        if failure is not None:
            return _json({"status": "unhealthy", "store": f"writes failing: {failure.reason}",
                          "worker": runtime.workers_alive()}, 503)
        if not runtime.workers_alive():
            return _json({"status": "unhealthy", "store": "ok", "worker": False}, 503)
        return _json({"status": "ok", "store": "ok", "worker": True})

    # ---- messages
    @app.post("/v1/messages", status_code=202, tags=["messages"], response_model=None,
              responses={202: {"model": MessageOut, "description": "queued (or, for an "
                               "Idempotency-Key seen before, the message it queued)",
                               "links": {"GetMessage": {"operationId": "getMessage", "parameters": {
                                   "message_id": "$response.body#/id"}}}},
                         **PROBLEM_RESPONSES, **TOO_LARGE},
              summary="Queue a message to send", openapi_extra=SEND_BODY)
    async def send_message(
        http_request: Request, key: Auth,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        body = await read_model(http_request, SendIn)
        request = SendRequest(
            from_number=body.from_, to_number=body.to, text=body.text,
            media=[MediaInput(url=m.url, data_base64=m.data, content_type=m.content_type)
                   for m in body.media],
            connection=body.connection,
        )
        message, created = await gateway().send(request, idempotency_key, scope=key.id,
                                                account=key.account_id)
        return _queued(message.to_dict(), f"/v1/messages/{message.id}", created)

    @app.get("/v1/messages/{message_id}", tags=["messages"], response_model=None,
             operation_id="getMessage",
             responses={200: {"model": MessageDetailOut}, **NOT_FOUND, **PROBLEM_RESPONSES})
    async def get_message(message_id: str, key: Auth) -> Response:
        gw = gateway()
        message = await gw.get_message(message_id, key.account_id)
        if message is None:
            raise StarletteHTTPException(404, f"no message {message_id}")
        return _json({**message.to_dict(), "rules": await rule_report(gw, message)})

    @app.get("/v1/messages", tags=["messages"], response_model=None,
             responses={200: {"model": MessageListOut}, **PROBLEM_RESPONSES})
    async def list_messages(
        key: Auth,
        number: str | None = None,
        direction: Direction | None = None,
        status: MessageStatus | None = None,
        connection: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> Response:
        if number:
            from ..core.phone import to_e164

            number = to_e164(number, settings.server.default_region, field="number")
        page = await gateway().list_messages(
            MessageFilter(number=number, direction=direction, status=status,
                          connection=connection, account_id=key.account_id), limit, cursor)
        return _json({"data": [m.to_dict() for m in page.messages],
                      "next_cursor": page.next_cursor})

    # ---- voice calls
    @app.post("/v1/calls", status_code=202, tags=["calls"], response_model=None,
              responses={202: {"model": CallOut, "description": "queued (or, for an "
                               "Idempotency-Key seen before, the call it queued)",
                               "links": {"GetCall": {"operationId": "getCall", "parameters": {
                                   "call_id": "$response.body#/id"}}}},
                         **PROBLEM_RESPONSES, **TOO_LARGE},
              summary="Queue a voice call that speaks a text", openapi_extra=CALL_BODY)
    async def place_call(
        http_request: Request, key: Auth,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Response:
        body = await read_model(http_request, CallIn)
        request = CallRequest(
            from_number=body.from_, to_number=body.to, say=body.say, voice=body.voice,
            language=body.language, repeat=body.repeat, connection=body.connection)
        call, created = await gateway().place_call(request, idempotency_key, scope=key.id,
                                                   account=key.account_id)
        return _queued(call.to_call_dict(), f"/v1/calls/{call.id}", created)

    @app.get("/v1/calls/{call_id}", tags=["calls"], response_model=None,
             operation_id="getCall",
             responses={200: {"model": CallOut}, **CALL_NOT_FOUND, **PROBLEM_RESPONSES})
    async def get_call(call_id: str, key: Auth) -> Response:
        call = await gateway().get_call(call_id, key.account_id)
        if call is None:
            raise StarletteHTTPException(404, f"no call {call_id}")
        return _json(call.to_call_dict())

    @app.get("/v1/calls", tags=["calls"], response_model=None,
             responses={200: {"model": CallListOut}, **PROBLEM_RESPONSES},
             summary="Voice calls, newest first")
    async def list_calls(
        key: Auth,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> Response:
        page = await gateway().list_messages(
            MessageFilter(kind=KIND_CALL, account_id=key.account_id), limit, cursor)
        return _json({"data": [c.to_call_dict() for c in page.messages],
                      "next_cursor": page.next_cursor})

    @app.get("/v1/webhook-deliveries", tags=["webhooks"], response_model=None,
             responses={200: {"model": DeliveryListOut}, **PROBLEM_RESPONSES},
             summary="App-webhook deliveries and their outcome")
    async def list_deliveries(
        key: Auth, message_id: str | None = None,
        status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Response:
        rows = await gateway().list_deliveries(key.account_id, message_id, status, limit)
        return _json({"data": [r.to_dict() for r in rows]})

    @app.get("/v1/carriers", tags=["carriers"], response_model=None,
             responses={200: {"model": ConnectionListOut}, **PROBLEM_RESPONSES},
             summary="The account's carrier connections and their webhook URLs (as "
                     "GET /v1/connections)")
    async def list_carriers(key: Auth) -> Response:
        return _json({"data": gateway().list_connections(key.scope)})

    app.add_middleware(BodySizeLimit, max_bytes=settings.server.max_body_bytes)
    # Outermost first: URL length, then carrier webhooks (their own bare layer, token in the
    # path), then the API key from the headers, and only then the framework.
    return UrlLengthLimit(CarrierWebhooks(ApiKeyGate(app, gateway), gateway, base_url,
                                          settings.server.max_webhook_bytes))
