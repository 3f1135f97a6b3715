"""The OpenAPI document, from the same pydantic models the routes read and answer with.

Routes read their bodies themselves (`common.read_body`: the strict JSON reader, then the model),
so FastAPI cannot see them; `documented(Body, …)` names the model on the route and `install`
puts its schema into `/openapi.json` as the request body. Error responses are each dialect's
envelope model, listed per status.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_MARK = "x-openmj-body"
_BODIES: dict[str, type[BaseModel]] = {}

STATUS_TEXT = {
    200: "Success (or, for kie.ai and midjourney-proxy submits, a refusal in the body's code)",
    400: "Invalid request: malformed JSON, a bad field or prompt",
    401: "Missing or invalid API key",
    402: "Not enough credits",
    403: "Key disabled or expired, model not allowed, or content refused",
    404: "No such task (another key's task is not found either)",
    413: "Request body too large",
    429: "Rate or concurrency limit; honour Retry-After",
    500: "Server error",
}


def documented(
    body: type[BaseModel] | None = None,
    *,
    errors: type[BaseModel],
    statuses: Iterable[int],
    ok: type[BaseModel] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its request body (read by the handler with
    `read_body(request, body)`), its answer and its error envelope for each status."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": errors, "description": STATUS_TEXT.get(status, "Error")} for status in statuses
    }
    if ok is not None:
        responses[200] = {"model": ok, "description": "Success"}
    kwargs: dict[str, Any] = {"responses": responses}
    if body is not None:
        name = f"{body.__module__}.{body.__qualname__}"
        _BODIES[name] = body
        kwargs["openapi_extra"] = {_MARK: name}
    return kwargs


def install(app: FastAPI, tags: list[dict[str, str]]) -> None:
    """Replace `app.openapi` with one that adds the request bodies (generated once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, tags)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI, tags: list[dict[str, str]]) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=tags,
    )
    models = sorted(_BODIES.items())
    refs, defs = models_json_schema(
        [(model, "validation") for _, model in models], ref_template="#/components/schemas/{model}"
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs.get("$defs", {}))
    by_name = {name: refs[(model, "validation")] for name, model in models}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            name = operation.pop(_MARK, None)
            if name is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": by_name[name]}},
                }
            # FastAPI adds a 422 for query parameters; openmj answers those with its own 400
            responses = operation.get("responses", {})
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
