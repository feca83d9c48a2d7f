"""Request input the routes read themselves: JSON bodies, and ids and filters free of NUL."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..core.errors import InvalidInput

# Larger bodies are parsed and validated on a worker thread: a few MB of small JSON objects
# take the parser and the validator 100+ ms each, which would otherwise hold up every other
# request on the event loop.
PARSE_ON_THREAD_BYTES = 64 * 1024

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, or InvalidInput naming the body and why."""
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidInput("body", "nests too deeply") from None
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        raise InvalidInput("body", "is not valid JSON") from None


def parse_model(body: bytes, model: type[ModelT]) -> ModelT:
    """``body`` as JSON validated into ``model``; errors name the field as FastAPI's do."""
    data = parse_json(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in errors]) from None
    except RecursionError:  # a structure deep enough to exhaust the validator's stack
        raise InvalidInput("body", "nests too deeply") from None


async def read_model(request: Request, model: type[ModelT]) -> ModelT:
    """Read the request's JSON body into ``model``, off the event loop when it is large."""
    body = await request.body()
    if len(body) > PARSE_ON_THREAD_BYTES:
        # The parsed value is also freed on that thread: only the model comes back.
        return await asyncio.to_thread(parse_model, body, model)
    return parse_model(body, model)


async def refuse_nul(request: Request) -> None:
    """Refuse U+0000 in a path id or a query parameter: no id or filter holds one."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(name, "must not contain NUL (U+0000)")
    for name, value in request.query_params.multi_items():
        if "\x00" in name:
            raise InvalidInput("query", "a parameter name contains NUL (U+0000)")
        if "\x00" in value:
            raise InvalidInput(name, "must not contain NUL (U+0000)")
