"""kie.ai: /api/v1/mj/generate (images, video), record-info, generateUpscale, generateVary,
generateVideoExtend.

docs/api/kie.md; the wire format is docs/reference/api-dialects.md §2. Thin: wire JSON ⇄ core
types; the rules live in the service. Envelope `{code, msg, data}`. Following §2.6, business errors
answer HTTP 200 with the code in the body (kie's own samples test `response.ok && body.code ===
200`); only authentication (401), a body over the size limit (413) and server faults (500) use
the real HTTP status as well.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openmj.core.tasks import Operation
from openmj.dialects.common import (
    Dialect,
    authenticate,
    callback_url,
    ctx,
    idempotency_key,
    invalid,
    keep_original,
    parse_model,
    read_json,
    translate_prompt_field,
)
from openmj.dialects.kie.errors import (
    KieCreated,
    _doc,
    _ok,
    error_response,
    kie_code,
)
from openmj.dialects.kie.render import callback_payload, render_record, success_flag
from openmj.dialects.kie.requests import (
    DIALECT,
    UPSCALE_PARAMS,
    VARY_PARAMS,
    VIDEO_TASK_TYPES,
    ActionBody,
    GenerateBody,
    build_action,
    build_generate,
)
from openmj.dialects.kie.video import ExtendBody, VideoBody, build_extend, build_video
from openmj.jsonwire import JSONResponse

TAG = "kie.ai"

router = APIRouter(prefix="/api/v1/mj", tags=[TAG])

# --------------------------------------------------------------------------- routes


@router.post("/generate", **_doc(GenerateBody, KieCreated))
async def generate(request: Request) -> JSONResponse:
    key = await authenticate(request)
    data = await read_json(request)
    if isinstance(data, dict) and data.get("taskType") in VIDEO_TASK_TYPES:
        ctx(request).service.require_capability(Operation.VIDEO)
        video = parse_model(VideoBody, data)
        callback = callback_url(request, video.callBackUrl, "callBackUrl")
        translation = await translate_prompt_field(request, video, bool(video.enableTranslation))
        req = keep_original(build_video(video), translation)
    else:
        body = parse_model(GenerateBody, data)
        callback = callback_url(request, body.callBackUrl, "callBackUrl")  # kie samples send "" for none
        translation = await translate_prompt_field(request, body, bool(body.enableTranslation))
        req = keep_original(build_generate(body), translation)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req, idempotency_key(request))
    return _ok({"taskId": task.id})


async def _action(request: Request, operation: Operation, params: dict[str, Any]) -> JSONResponse:
    key = await authenticate(request)
    data = await read_json(request)
    body = parse_model(ActionBody, data)
    callback = callback_url(request, body.callBackUrl, "callBackUrl")
    req = build_action(body, operation, params)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req, idempotency_key(request))
    return _ok({"taskId": task.id})


@router.post("/generateUpscale", **_doc(ActionBody, KieCreated))
async def generate_upscale(request: Request) -> JSONResponse:
    return await _action(request, Operation.UPSCALE, UPSCALE_PARAMS)


@router.post("/upscale", include_in_schema=False)
async def upscale_quickstart(request: Request) -> JSONResponse:
    """The path kie's quickstart sample calls (a stale doc); same as generateUpscale."""
    return await _action(request, Operation.UPSCALE, UPSCALE_PARAMS)


@router.post("/generateVary", **_doc(ActionBody, KieCreated))
async def generate_vary(request: Request) -> JSONResponse:
    return await _action(request, Operation.VARIATION, VARY_PARAMS)


@router.post("/generateVideoExtend", **_doc(ExtendBody, KieCreated))
async def generate_video_extend(request: Request) -> JSONResponse:
    key = await authenticate(request)
    ctx(request).service.require_capability(Operation.VIDEO_EXTEND)
    data = await read_json(request)
    body = parse_model(ExtendBody, data)
    callback = callback_url(request, body.callBackUrl, "callBackUrl")
    req = build_extend(body)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req, idempotency_key(request))
    return _ok({"taskId": task.id})


@router.get("/record-info", **_doc())
async def record_info(request: Request, taskId: str | None = None) -> JSONResponse:  # noqa: N803
    key = await authenticate(request)
    if not taskId:
        raise invalid("taskId is required (query parameter)", "taskId")
    task = await ctx(request).service.get(key, taskId)
    return _ok(render_record(ctx(request), task))


DIALECT_RECORD = Dialect(DIALECT, TAG, router, r"^/api/v1/mj/", error_response, callback_payload)

__all__ = ["DIALECT_RECORD", "callback_payload", "error_response", "kie_code", "router", "success_flag"]
