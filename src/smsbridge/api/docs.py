"""/openapi.json as the API really answers, and /docs served without any outside host."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from .problems import PROBLEM_MEDIA_TYPE

DOCS_ASSETS = "/docs/assets"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def install_openapi(app: FastAPI, body_models: list[type[BaseModel]]) -> None:
    """Make ``app.openapi()`` describe problem responses and the bodies routes read themselves.

    FastAPI files every response model under application/json; the API answers each
    error as application/problem+json. ``body_models`` are the request bodies that
    routes parse on their own (their schemas are referenced from ``openapi_extra``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in body_models:
            model_schema = model.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get("application/json", {}).get("schema") == PROBLEM_REF:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        # FastAPI's own validation-error shapes are never answered: every 422 is a problem.
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs from the assets of the swagger-ui-bundle package.

    A gateway on a LAN often has no internet: nothing on the page may come from a CDN.
    """
    import swagger_ui_bundle

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            # Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )
