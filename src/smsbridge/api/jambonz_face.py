"""The jambonz-compatible face: ``POST /v1/Accounts/{account_id}/Messages``.

A jambonz app sends an SMS with its installation's REST API (jambonz-api-server,
lib/routes/api/accounts.js; documented in jambonz/jambonz-docs, docs/sms.md):

    POST /v1/Accounts/{account_sid}/Messages   Authorization: Bearer <api key>
    {"from": "13322060388", "to": "+15083084809", "provider": "peerless", "text": "..."}
    -> 201 {"sid": "...", "providerResponse": {...}}

Pointed at smsbridge, the same request sends like ``POST /v1/messages``: the account is
smsbridge's (``acc_...``), the key one of its API keys, and ``provider`` (``carrier`` in
newer jambonz releases) names a connection of the account. The route only translates;
sending, opt-outs and idempotency are the gateway's. Errors are the API's problem
documents. The messaging webhook in jambonz's shape is gateway/jambonz_forms.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import JSONResponse, Response

from ..core.errors import InvalidInput, NotFound
from ..core.segments import replace_lone_surrogates
from ..gateway.jambonz_forms import from_jambonz_number, send_answer
from ..gateway.service import MediaInput, SendRequest
from .auth import Auth, GatewayDep
from .inputs import read_model
from .models import PROBLEM_RESPONSES, TOO_LARGE, MessageOut, not_found

router = APIRouter(prefix="/v1")

MAX_MEDIA = 10


class JambonzMessageIn(BaseModel):
    """A message to send, as a jambonz app posts it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={
        "examples": [{"from": "15555550100", "to": "15145550111", "text": "Porch motion"}]})

    from_: str = Field(alias="from", max_length=64,
                       description="one of the account's numbers; jambonz writes E.164 "
                                   "without the +, such as 15083084809")
    to: str | list[str] = Field(description="the recipient, or a list holding just it")
    text: str = Field("", max_length=5000)
    provider: str | None = Field(None, max_length=200,
                                 description="a connection of the account; default: the one "
                                             "that owns `from`")
    carrier: str | None = Field(None, max_length=200,
                                description="newer jambonz's name for `provider`")
    media: str | list[str] = Field(default_factory=list,
                                   description="public http(s) URLs of attachments")
    cc: list[str] = Field(default_factory=list, description="not supported: must be empty")

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # JSON may carry half of an emoji ("\ud83d"); pydantic refuses such a str outright.
        return replace_lone_surrogates(value) if isinstance(value, str) else value


class JambonzSentOut(BaseModel):
    """What jambonz answers a send with: the message's id and the carrier's answer, which
    smsbridge gives as the message it queued."""

    sid: str = Field(description="the message's id (GET /v1/messages/{sid})")
    # jambonz's own key names, camelCase as it writes them.
    providerResponse: MessageOut
    carrierResponse: MessageOut = Field(description="newer jambonz's name for "
                                                    "providerResponse")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` holding the JSON body the route reads itself, inline."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(by_alias=True)}}}}


def _one_recipient(to: str | list[str]) -> str:
    if isinstance(to, str):
        return to
    if len(to) != 1:
        raise InvalidInput("to", f"takes one number, got {len(to)}; send one message per "
                                 "recipient")
    return to[0]


def _media(media: str | list[str]) -> list[MediaInput]:
    urls = [media] if isinstance(media, str) else media
    if len(urls) > MAX_MEDIA:
        raise InvalidInput("media", f"takes at most {MAX_MEDIA} URLs, got {len(urls)}")
    return [MediaInput(url=url) for url in urls]


def _connection(body: JambonzMessageIn) -> tuple[str, str | None]:
    """The connection asked for, and the field that named it (for errors)."""
    if body.provider is not None and body.carrier is not None and body.provider != body.carrier:
        raise InvalidInput("carrier", "names another connection than provider; give one")
    if body.carrier is not None and body.provider is None:
        return "carrier", body.carrier
    return "provider", body.provider


def _in_jambonz_terms(exc: InvalidInput, connection_field: str) -> InvalidInput:
    """The gateway's error, naming the field as the jambonz request did."""
    if type(exc) is not InvalidInput:  # an opt-out or a reused Idempotency-Key keeps its kind
        return exc
    if exc.field == "connection":
        return InvalidInput(connection_field, exc.reason)
    if exc.field.startswith("media[") and exc.field.endswith("].url"):
        return InvalidInput(exc.field.removesuffix(".url"), exc.reason)
    return exc


@router.post("/Accounts/{account_id}/Messages", status_code=201, tags=["jambonz"],
             response_model=None, openapi_extra=_schema(JambonzMessageIn),
             summary="Send a message the way a jambonz app does (POST /v1/messages in "
                     "jambonz's shape)",
             responses={201: {"model": JambonzSentOut, "description": "queued (or, for an "
                              "Idempotency-Key seen before, the message it queued)"},
                        **not_found("account"), **PROBLEM_RESPONSES, **TOO_LARGE})
async def send_jambonz_message(
    account_id: str, request: Request, key: Auth, gateway: GatewayDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    # Before the body: another account's path is not worth reading it for, and answers as
    # an account that does not exist.
    if account_id != key.account_id:
        raise NotFound("account", account_id)
    body = await read_model(request, JambonzMessageIn)
    if body.cc:
        raise InvalidInput("cc", "is not supported; send one message per recipient")
    connection_field, connection = _connection(body)
    send = SendRequest(
        from_number=from_jambonz_number(body.from_),
        to_number=from_jambonz_number(_one_recipient(body.to)),
        text=body.text, media=_media(body.media), connection=connection)
    try:
        message, created = await gateway.send(send, idempotency_key, scope=key.id,
                                              account=key.account_id)
    except InvalidInput as exc:
        raise _in_jambonz_terms(exc, connection_field) from None
    headers = {"Location": f"/v1/messages/{message.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(send_answer(message), status_code=201, headers=headers)


def install_jambonz_face(app: FastAPI) -> None:
    """Serve jambonz's ``POST /v1/Accounts/{account_id}/Messages`` (behind the API key gate)."""
    app.include_router(router)
