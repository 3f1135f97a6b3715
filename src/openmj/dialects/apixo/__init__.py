"""APIXO: POST /api/v1/generateTask/midjourney, GET /api/v1/statusTask/midjourney, balance.

docs/api/apixo.md; the wire format is docs/reference/api-dialects.md §3. Thin: wire JSON ⇄ core
types; the rules live in the service. Envelope `{code, message, data}`; errors use the real HTTP
status (§3.5) with the same `code`. Three generations of APIXO's docs coexist, so `input` accepts
every name any of them used.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request

from openmj.core.tasks import ErrorCode, Status, Task, TaskError
from openmj.dialects.apixo.errors import _doc, _ok, error_response
from openmj.dialects.apixo.requests import BUILDERS, DIALECT, MODEL, UPSCALE_TYPES, SubmitBody, _callback
from openmj.dialects.common import (
    Context,
    Dialect,
    authenticate,
    ctx,
    invalid,
    read_body,
    result_urls,
    unix_ms,
)
from openmj.jsonwire import JSONResponse

TAG = "APIXO"
router = APIRouter(prefix="/api/v1", tags=[TAG])

# --------------------------------------------------------------------------- responses

_STATES = {
    Status.PENDING: "pending",
    Status.MODAL: "pending",  # a midjourney-proxy task waiting for its modal input
    Status.PROCESSING: "processing",
    Status.COMPLETED: "success",
    Status.FAILED: "failed",
    Status.CANCELLED: "failed",
}
#: core task error code → APIXO failCode (api-dialects.md §3.5)
FAIL_CODES = {
    ErrorCode.CONTENT_POLICY.value: "CONTENT_VIOLATION",
    ErrorCode.IMAGE_TOO_LARGE.value: "IMAGE_TOO_LARGE",
    ErrorCode.UNSUPPORTED_FORMAT.value: "UNSUPPORTED_FORMAT",
    ErrorCode.INVALID_IMAGE_URL.value: "INVALID_IMAGE_URL",
    ErrorCode.IMAGE_PROCESSING.value: "IMAGE_DOWNLOAD_FAILED",
    ErrorCode.GENERATION_TIMEOUT.value: "PROCESSING_TIMEOUT",
    ErrorCode.INVALID_PROMPT.value: "INVALID_PROMPT",
    ErrorCode.NOT_FOUND.value: "INVALID_TASK_ID",  # the source image of an action is gone
}
DEFAULT_FAIL_CODE = "GENERATION_FAILED"


def render_status(ctx_: Context, task: Task) -> dict[str, Any]:
    """statusTask `data` (api-dialects.md §3.3): times in Unix ms; resultJson is a JSON string."""
    out: dict[str, Any] = {
        "taskId": task.id,
        "state": _STATES[task.status],
        "createTime": unix_ms(task.created_at),
    }
    if task.status.terminal:
        done = task.finished_at or task.created_at
        out["completeTime"] = unix_ms(done)
    if task.status is Status.COMPLETED:
        out["resultJson"] = json.dumps({"resultUrls": result_urls(ctx_.signer, task)})
        out["costTime"] = out["completeTime"] - out["createTime"]
    elif task.status.terminal:
        out["failCode"] = FAIL_CODES.get(task.error_code or "", DEFAULT_FAIL_CODE)
        out["failMsg"] = task.error_message or "Generation failed"
    return out


def callback_payload(ctx: Context, task: Task, event: str) -> dict[str, Any]:
    """The webhook body (api-dialects.md §3.4): exactly the statusTask envelope."""
    return {"code": 200, "message": "success", "data": render_status(ctx, task)}


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
    req = BUILDERS[body.input.mode](body.input)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req)
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


DIALECT_RECORD = Dialect(
    name=DIALECT,
    title=TAG,
    router=router,
    paths=re.compile(r"^/api/v1/"),
    error_response=error_response,
    callback_payload=callback_payload,
)


__all__ = ["callback_payload", "error_response", "router"]

__all__ = ["DIALECT_RECORD", "UPSCALE_TYPES", "callback_payload", "error_response", "render_status", "router"]
