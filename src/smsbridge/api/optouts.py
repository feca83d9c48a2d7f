"""/v1/optouts: the key's account's opt-out list, per sending number; and the 422 of a send
it refuses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ..core.errors import RecipientOptedOut
from ..gateway.optouts import OptoutList
from .auth import Auth, GatewayDep
from .inputs import read_model
from .models import PROBLEM_RESPONSES, TOO_LARGE, Problem
from .problems import opted_out

router = APIRouter(prefix="/v1/optouts", tags=["optouts"])

NOT_LISTED: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "the number is not on that sending number's list"}}


class OptoutIn(BaseModel):
    """A recipient to put on a sending number's opt-out list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={
        "examples": [{"from": "+15555550100", "to": "+15145550111"}]})

    from_: str = Field(alias="from", description="one of your numbers (E.164 or national)")
    to: str = Field(description="the recipient that is sent nothing from `from`")


# Read by the route itself, as /v1/messages does: bad JSON is a 422 problem like any input.
ADD_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": OptoutIn.model_json_schema(by_alias=True)}}}}


class OptoutOut(BaseModel):
    """A recipient on a sending number's opt-out list."""

    from_: str = Field(alias="from")
    to: str
    source: str = Field(description="keyword (it texted STOP), carrier (the carrier refused "
                                    "a send: opted out), api or cli")
    created_at: str


class OptoutListOut(BaseModel):
    """A page of the opt-out list, newest first."""

    data: list[OptoutOut]
    next_cursor: str | None


def optout_list(key: Auth, gateway: GatewayDep) -> OptoutList:
    """The opt-out list of the key's account."""
    return gateway.optouts(key.account_id)


Optouts = Annotated[OptoutList, Depends(optout_list)]


@router.get("", response_model=None, summary="The opt-out list, newest first",
            responses={200: {"model": OptoutListOut}, **PROBLEM_RESPONSES})
async def list_optouts(
    _key: Auth, optouts: Optouts,
    from_: Annotated[str | None, Query(alias="from", description="only this sending number")
                     ] = None,
    to: Annotated[str | None, Query(description="only this recipient")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Response:
    page = await optouts.list(from_, to, limit=limit, cursor=cursor)
    return JSONResponse({"data": [e.to_dict() for e in page.entries],
                         "next_cursor": page.next_cursor})


@router.post("", response_model=None, summary="Put a recipient on a number's opt-out list",
             responses={200: {"model": OptoutOut, "description": "it was listed already"},
                        201: {"model": OptoutOut, "description": "listed"}, **PROBLEM_RESPONSES,
                        **TOO_LARGE},
             openapi_extra=ADD_BODY)
async def add_optout(request: Request, _key: Auth, optouts: Optouts) -> Response:
    body = await read_model(request, OptoutIn)
    record, added = await optouts.add(body.from_, body.to, "api")
    return JSONResponse(record.to_dict(), status_code=201 if added else 200)


@router.delete("/{number}", status_code=204, response_model=None,
               summary="Take a recipient off a number's opt-out list",
               responses={204: {"description": "taken off"}, **NOT_LISTED, **PROBLEM_RESPONSES})
async def remove_optout(
    number: str, _key: Auth, optouts: Optouts,
    from_: Annotated[str, Query(alias="from", description="the sending number whose list")],
) -> Response:
    if await optouts.remove(from_, number) is None:
        raise StarletteHTTPException(404, f"{number} is not on the opt-out list of {from_}")
    return Response(status_code=204)


def install_optouts(app: FastAPI) -> None:
    """Serve /v1/optouts, and answer a send to an opted-out recipient with its own problem."""

    async def refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RecipientOptedOut)
        return opted_out(exc.field, exc.reason)

    app.add_exception_handler(RecipientOptedOut, refused)
    app.include_router(router)
