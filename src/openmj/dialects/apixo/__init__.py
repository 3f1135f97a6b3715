"""APIXO: POST /api/v1/generateTask/midjourney, GET /api/v1/statusTask/midjourney, balance.

docs/api/apixo.md; the wire format is docs/reference/api-dialects.md §3. Thin: wire JSON ⇄ core
types; the rules live in the service. Envelope `{code, message, data}`; errors use the real HTTP
status (§3.5) with the same `code`. Three generations of APIXO's docs coexist, so `input` accepts
every name any of them used.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from openmj.core.tasks import ErrorCode, TaskError
from openmj.dialects.apixo.errors import _doc, _ok, error_response
from openmj.dialects.apixo.render import callback_payload, render_status
from openmj.dialects.apixo.requests import BUILDERS, DIALECT, MODEL, UPSCALE_TYPES, SubmitBody, _callback
from openmj.dialects.common import (
    Dialect,
    authenticate,
    ctx,
    idempotency_key,
    invalid,
    keep_original,
    read_body,
    translate_prompt_field,
)
from openmj.jsonwire import JSONResponse

TAG = "APIXO"
router = APIRouter(prefix="/api/v1", tags=[TAG])

# --------------------------------------------------------------------------- routes


def _model(model: str) -> None:
    if model != MODEL:
        raise TaskError(ErrorCode.NOT_FOUND, f"Model not found: {model} (this server serves midjourney)", 404)


@router.post("/generateTask/{model}", **_doc(SubmitBody))
async def generate_task(request: Request, model: str) -> JSONResponse:
    key = await authenticate(request)
    _model(model)
    body, data = await read_body(request, SubmitBody)
    callback = _callback(request, body)
    translation = await translate_prompt_field(request, body.input, bool(body.input.enableTranslation))
    req = keep_original(BUILDERS[body.input.mode](body.input), translation)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req, idempotency_key(request))
    return _ok({"taskId": task.id})


@router.get("/statusTask/{model}", **_doc())
async def status_task(request: Request, model: str, taskId: str | None = None) -> JSONResponse:  # noqa: N803
    key = await authenticate(request)
    _model(model)
    if not taskId:
        raise invalid("Missing required query parameter: taskId", "taskId")
    task = await ctx(request).service.get(key, taskId)
    return _ok(render_status(ctx(request), task))


@router.get("/apikeys/current-balance", **_doc())
async def current_balance(request: Request) -> JSONResponse:
    key = await authenticate(request)
    balance = await ctx(request).service.balance(key)
    return _ok({"balance": balance.remaining, "usedBalance": balance.used, "unit": "credits"})


DIALECT_RECORD = Dialect(DIALECT, TAG, router, r"^/api/v1/", error_response, callback_payload)


__all__ = ["callback_payload", "error_response", "router"]

__all__ = ["DIALECT_RECORD", "UPSCALE_TYPES", "callback_payload", "error_response", "render_status", "router"]
