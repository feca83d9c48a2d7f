"""/v1/accounts, /v1/connections and /v1/webhooks: tenants and what each one adds at run time.

Every route acts through the gateway service within the key's account (gateway/accounts.py,
connection_admin.py, webhook_admin.py); another account's things answer 404 as if they did
not exist. Bodies are read by the routes themselves, after the key is checked (auth.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from ..gateway.accounts import require_admin
from .auth import Auth, GatewayDep
from .inputs import read_model
from .models import (
    CONFLICT,
    FORBIDDEN,
    PROBLEM_RESPONSES,
    SECRET_KEY,
    TOO_LARGE,
    AccountIn,
    AccountListOut,
    AccountOut,
    ApiKeyCreatedOut,
    ApiKeyIn,
    ConnectionIn,
    ConnectionListOut,
    ConnectionOut,
    ConnectionPatchIn,
    WebhookCreatedOut,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    not_found,
)

router = APIRouter(prefix="/v1")

# The request bodies these routes read; install_openapi (docs.py) files their schemas.
BODY_MODELS: list[type[BaseModel]] = [AccountIn, ApiKeyIn, ConnectionIn, ConnectionPatchIn,
                                      WebhookIn]
# What a new API key shows: its record without revoked_at (a new key is live), and the key.
KEY_FIELDS = ("id", "name", "prefix", "account_id", "admin", "created_at")


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` naming the JSON body a route reads itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _created(data: dict[str, Any], location: str | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=201,
                        headers={"Location": location} if location else None)


# ---------------------------------------------------------------- accounts


@router.post("/accounts", status_code=201, tags=["accounts"], response_model=None,
             summary="Make an account (admin key)", openapi_extra=_body(AccountIn),
             responses={201: {"model": AccountOut, "description": "made"}, **FORBIDDEN,
                        **PROBLEM_RESPONSES, **TOO_LARGE})
async def create_account(request: Request, key: Auth, gateway: GatewayDep) -> Response:
    require_admin(key.scope)  # before the body: a key that may not is not worth reading it for
    body = await read_model(request, AccountIn)
    record, token = await gateway.create_account_with_token(key.scope, body.name)
    # The auth token is shown this once (`smsbridge accounts token ID` shows it again).
    return _created({**record.to_dict(), "auth_token": token}, f"/v1/accounts/{record.id}")


@router.get("/accounts", tags=["accounts"], response_model=None,
            summary="Every account (admin key)",
            responses={200: {"model": AccountListOut}, **FORBIDDEN, **PROBLEM_RESPONSES})
async def list_accounts(key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse({"data": [a.to_dict() for a in await gateway.list_accounts(key.scope)]})


@router.get("/accounts/{account_id}", tags=["accounts"], response_model=None,
            summary="One account: any with an admin key, else the key's own",
            responses={200: {"model": AccountOut}, **not_found("account"),
                       **PROBLEM_RESPONSES})
async def get_account(account_id: str, key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse((await gateway.get_account(key.scope, account_id)).to_dict())


@router.post("/accounts/{account_id}/keys", status_code=201, tags=["accounts"],
             response_model=None, summary="Make an API key of an account (admin key)",
             openapi_extra=_body(ApiKeyIn),
             responses={201: {"model": ApiKeyCreatedOut,
                              "description": "made; the key is shown this once"},
                        **FORBIDDEN, **not_found("account"), **PROBLEM_RESPONSES, **TOO_LARGE})
async def create_api_key(account_id: str, request: Request, key: Auth, gateway: GatewayDep
                         ) -> Response:
    require_admin(key.scope)
    body = await read_model(request, ApiKeyIn)
    record, secret = await gateway.create_api_key(body.name, account=account_id)
    shown = record.to_dict()
    return _created({**{name: shown[name] for name in KEY_FIELDS}, "key": secret})


# ---------------------------------------------------------------- connections


@router.post("/connections", status_code=201, tags=["connections"], response_model=None,
             summary="Add a carrier connection; answers the URLs to give the carrier",
             openapi_extra=_body(ConnectionIn),
             responses={201: {"model": ConnectionOut, "description": "added"}, **CONFLICT,
                        **PROBLEM_RESPONSES, **TOO_LARGE, **SECRET_KEY})
async def add_connection(request: Request, key: Auth, gateway: GatewayDep) -> Response:
    body = await read_model(request, ConnectionIn)
    added = await gateway.add_connection(key.scope, body.name, body.carrier, body.numbers,
                                         body.settings)
    return _created(added, f"/v1/connections/{added['name']}")


@router.get("/connections", tags=["connections"], response_model=None,
            summary="The account's carrier connections, the config file's first",
            responses={200: {"model": ConnectionListOut}, **PROBLEM_RESPONSES})
async def list_connections(key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse({"data": gateway.list_connections(key.scope)})


@router.get("/connections/{name}", tags=["connections"], response_model=None,
            summary="One connection and its URLs",
            responses={200: {"model": ConnectionOut}, **not_found("connection"),
                       **PROBLEM_RESPONSES})
async def get_connection(name: str, key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse(gateway.get_connection(key.scope, name))


@router.patch("/connections/{name}", tags=["connections"], response_model=None,
              summary="Change a connection's numbers or settings",
              openapi_extra=_body(ConnectionPatchIn),
              responses={200: {"model": ConnectionOut}, **not_found("connection"), **CONFLICT,
                         **PROBLEM_RESPONSES, **TOO_LARGE, **SECRET_KEY})
async def update_connection(name: str, request: Request, key: Auth, gateway: GatewayDep
                            ) -> Response:
    body = await read_model(request, ConnectionPatchIn)
    return JSONResponse(await gateway.update_connection(
        key.scope, name, numbers=body.numbers, settings=body.settings))


@router.delete("/connections/{name}", status_code=204, tags=["connections"],
               response_model=None, summary="Remove a connection; its URLs stop working",
               responses={204: {"description": "removed"}, **not_found("connection"),
                          **CONFLICT, **PROBLEM_RESPONSES})
async def remove_connection(name: str, key: Auth, gateway: GatewayDep) -> Response:
    await gateway.remove_connection(key.scope, name)
    return Response(status_code=204)


@router.post("/connections/{name}/rotate-token", tags=["connections"], response_model=None,
             summary="Give a connection new webhook URLs; the old ones stop working",
             responses={200: {"model": ConnectionOut}, **not_found("connection"),
                        **PROBLEM_RESPONSES})
async def rotate_connection_token(name: str, key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse(await gateway.rotate_connection_token(key.scope, name))


# ---------------------------------------------------------------- app webhooks


@router.post("/webhooks", status_code=201, tags=["webhooks"], response_model=None,
             summary="Add an app webhook; answers its signing secret, this once",
             openapi_extra=_body(WebhookIn),
             responses={201: {"model": WebhookCreatedOut, "description": "added"},
                        **PROBLEM_RESPONSES, **TOO_LARGE, **SECRET_KEY})
async def create_webhook(request: Request, key: Auth, gateway: GatewayDep) -> Response:
    body = await read_model(request, WebhookIn)
    hook, secret = await gateway.create_webhook(key.scope, body.url, body.events, body.format)
    return _created({**hook, "secret": secret}, f"/v1/webhooks/{hook['id']}")


@router.get("/webhooks", tags=["webhooks"], response_model=None,
            summary="The account's app webhooks (the default account's include the config "
                    "file's)",
            responses={200: {"model": WebhookListOut}, **PROBLEM_RESPONSES})
async def list_webhooks(key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse({"data": await gateway.list_webhooks(key.scope)})


@router.get("/webhooks/{webhook_id}", tags=["webhooks"], response_model=None,
            summary="One app webhook added through the API",
            responses={200: {"model": WebhookOut}, **not_found("webhook"),
                       **PROBLEM_RESPONSES})
async def get_webhook(webhook_id: str, key: Auth, gateway: GatewayDep) -> Response:
    return JSONResponse(await gateway.get_webhook(key.scope, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, tags=["webhooks"],
               response_model=None, summary="Remove an app webhook; its pending deliveries "
                                            "are given up",
               responses={204: {"description": "removed"}, **not_found("webhook"),
                          **PROBLEM_RESPONSES})
async def delete_webhook(webhook_id: str, key: Auth, gateway: GatewayDep) -> Response:
    await gateway.delete_webhook(key.scope, webhook_id)
    return Response(status_code=204)


def install_tenants(app: FastAPI) -> None:
    """Serve /v1/accounts, /v1/connections and /v1/webhooks."""
    app.include_router(router)
