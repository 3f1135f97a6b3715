"""kie.ai: /api/v1/mj/generate, record-info, generateUpscale, generateVary (+ video: 505).

spec/api-dialects.md §2, seed 003. Thin: wire JSON ⇄ core types; the rules live in the service.
Envelope `{code, msg, data}`. Following spec §2.6, business errors answer HTTP 200 with the code in
the body (kie's own samples test `response.ok && body.code === 200`); only authentication (401)
and server faults (500) use the real HTTP status as well.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import kie_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, Status, Task, TaskError, TaskRequest
from openmj.dialects.common import Context, authenticate, ctx, parse_model, read_json, result_urls
from openmj.jsonwire import JSONResponse
from openmj.net import UnsafeURLError, check_url

DIALECT = "kie"
MODEL = "midjourney"  # kie has no model field; the name that key model lists and prices see
MAX_PROMPT = 2000  # seed 003: "Max length: 2000 characters"
MAX_CALLBACK_URL = 2048  # same limit as the callback deliverer (callbacks.MAX_URL_LENGTH)
MAX_FILE_URLS = 20

router = APIRouter(prefix="/api/v1/mj")

# --------------------------------------------------------------------------- errors

#: core code → kie body code (spec §2.6: 400 400 401 402 404 422 429 455 500 501 505)
_CODES: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.KEY_DISABLED: 401,
    ErrorCode.KEY_EXPIRED: 401,
    ErrorCode.MODEL_ACCESS_DENIED: 401,
    ErrorCode.INSUFFICIENT_QUOTA: 402,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_PARAMETERS: 422,
    ErrorCode.INVALID_PROMPT: 422,
    ErrorCode.INVALID_IMAGE_URL: 422,
    ErrorCode.IMAGE_TOO_LARGE: 422,
    ErrorCode.UNSUPPORTED_FORMAT: 422,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_TASKS: 429,
    ErrorCode.QUEUE_FULL: 429,
    ErrorCode.NOT_SUPPORTED: 505,
    ErrorCode.GENERATION_FAILED: 501,
    ErrorCode.SERVICE_ERROR: 500,
}
# the codes that also set the HTTP status (spec §2.6: auth and server faults); 413 comes from the
# body-size guard before the body is read, where a proxy in front would answer 413 as well
_REAL_HTTP = frozenset({401, 413, 500})


def kie_code(err: TaskError) -> int:
    return _CODES.get(err.code, 500 if err.http_status >= 500 else 400)


def error_response(err: TaskError) -> JSONResponse:
    code = kie_code(err)
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    return JSONResponse(
        {"code": code, "msg": err.message, "data": None},
        status_code=code if code in _REAL_HTTP else 200,
        headers=headers,
    )


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "msg": "success", "data": data})


def _not_supported(what: str) -> TaskError:
    return TaskError(
        ErrorCode.NOT_SUPPORTED,
        f"{what} is not supported by this server (feature disabled): openmj has no video model yet",
        400,
    )


def _invalid(message: str, param: str) -> TaskError:
    return TaskError(ErrorCode.INVALID_PARAMETERS, message, 400, param=param)


# --------------------------------------------------------------------------- requests

IMAGE_TASK_TYPES = ("mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference")
VIDEO_TASK_TYPES = ("mj_video", "mj_video_hd")
#: kie speed → queue speed; "Relax" is how kie itself writes it back in paramJson
_SPEEDS = {"relaxed": Speed.RELAX, "relax": Speed.RELAX, "fast": Speed.FAST, "turbo": Speed.TURBO}


class GenerateBody(BaseModel):
    """POST /api/v1/mj/generate (seed 003). Unknown keys are ignored (kie adds fields often)."""

    model_config = ConfigDict(extra="ignore")
    taskType: Literal["mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference"] = "mj_txt2img"
    prompt: str = Field(max_length=MAX_PROMPT)
    speed: str | None = None
    fileUrl: str | None = None
    fileUrls: list[str] | None = Field(default=None, max_length=MAX_FILE_URLS)
    aspectRatio: str | None = None
    version: str | int | float | None = None
    # integers, checked by the prompt parser with Midjourney's own messages and ranges
    variety: Any = None
    stylization: Any = None
    weirdness: Any = None
    ow: Any = None
    waterMark: str | None = None
    enableTranslation: bool | None = None  # accepted; openmj does not translate (docs/api/kie.md)
    callBackUrl: str | None = None


class ActionBody(BaseModel):
    """POST generateUpscale / generateVary: `{taskId, imageIndex 0–3, waterMark, callBackUrl}`."""

    model_config = ConfigDict(extra="ignore")
    taskId: str = Field(min_length=1, max_length=128)
    # the quickstart's sample class sends `index` (a stale doc); accept both spellings
    imageIndex: int = Field(ge=0, le=3, strict=True, validation_alias=AliasChoices("imageIndex", "index"))
    waterMark: str | None = None
    callBackUrl: str | None = None


def _validate_callback(request: Request, url: str | None) -> str | None:
    if not url:  # kie samples send "" for "no callback"
        return None
    try:
        check_url(url, ctx(request).net, https_only=True, max_length=MAX_CALLBACK_URL)
    except UnsafeURLError as exc:
        raise _invalid(f"Invalid callBackUrl: {exc.message}", "callBackUrl") from exc
    return url


def _speed(value: str | None) -> Speed:
    if value is None or value == "":
        return Speed.FAST  # kie: speed is optional for omni reference; fast is MJ's default mode
    speed = _SPEEDS.get(value.strip().lower())
    if speed is None:
        raise _invalid(f"Invalid speed '{value}': use relaxed, fast or turbo", "speed")
    return speed


def _version(value: str | int | float | None) -> str | None:
    # clients send 7 or 6.1 as JSON numbers as well as strings
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None if value is None else str(value)


def _file_urls(body: GenerateBody) -> list[str]:
    urls = body.fileUrls if body.fileUrls else ([body.fileUrl] if body.fileUrl else [])
    urls = [u for u in urls if u]  # kie samples send "" for "no file"
    for url in urls:
        # they are written into the prompt as --sref/--oref values: one token, no braces
        if any(ch.isspace() or ch in "{}" for ch in url):
            raise _invalid(f"Invalid file URL: {url[:80]!r}", "fileUrls")
    return urls


def _watermark(params: dict[str, Any], text: str | None) -> None:
    if text:
        params["watermark"] = text  # visible watermark; the engine draws it (docs/api/kie.md)


def build_generate(body: GenerateBody) -> TaskRequest:
    if not body.prompt.strip():
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "prompt is required and cannot be empty", 400, param="prompt"
        )
    urls = _file_urls(body)
    text = body.prompt
    params: dict[str, Any] = {}
    if body.taskType == "mj_img2img":
        if not urls:
            raise _invalid("fileUrls (or fileUrl) is required for mj_img2img", "fileUrls")
        params["image_urls"] = urls
    elif body.taskType == "mj_style_reference":
        if not urls:
            raise _invalid("fileUrls (or fileUrl) is required for mj_style_reference", "fileUrls")
        text = f"{text} --sref {' '.join(urls)}"
    elif body.taskType == "mj_omni_reference":
        if len(urls) != 1:
            raise _invalid("mj_omni_reference takes exactly one image in fileUrls (or fileUrl)", "fileUrls")
        text = f"{text} --oref {urls[0]}"
    # mj_txt2img: kie says "leave empty for text-to-image"; its own sample still sends a
    # fileUrls placeholder, so file URLs are ignored here rather than refused.
    fields = {
        "aspectRatio": body.aspectRatio,
        "version": _version(body.version),
        "variety": body.variety,
        "stylization": body.stylization,
        "weirdness": body.weirdness,
        "ow": body.ow,
        "speed": body.speed,
    }
    speed = _speed(body.speed)
    try:
        parsed = kie_prompt(text, fields)
    except PromptError as exc:
        raise TaskError(ErrorCode.INVALID_PROMPT, exc.message, 400, param="prompt") from exc
    _watermark(params, body.waterMark)
    return TaskRequest(
        operation=Operation.IMAGINE,
        model=MODEL,
        dialect=DIALECT,
        prompt=body.prompt,
        parsed=parsed.to_dict(),
        speed=speed,
        params=params,
    )


# Midjourney's U button is a subtle 2× upscale; its V button is "Vary (Strong)" by default
# (the "high variation mode" setting), which is what kie's generateVary presses.
UPSCALE_PARAMS = {"mode": "subtle", "factor": 2}
VARY_PARAMS = {"strength": "strong"}


def build_action(body: ActionBody, operation: Operation, params: dict[str, Any]) -> TaskRequest:
    req = TaskRequest(operation=operation, model=MODEL, dialect=DIALECT, speed=Speed.FAST)
    req.parent_id = body.taskId
    req.parent_index = body.imageIndex
    req.params = dict(params)
    _watermark(req.params, body.waterMark)
    return req


# --------------------------------------------------------------------------- responses

#: task types for tasks that were not created by /generate (kie names for its action tasks)
_TASK_TYPES = {
    Operation.UPSCALE: "mj_upscale",
    Operation.VARIATION: "mj_vary",
    Operation.REMIX: "mj_vary",
    Operation.VIDEO: "mj_video",
}


def task_type(task: Task) -> str:
    sent = task.request.get("taskType") if task.dialect == DIALECT else None
    if isinstance(sent, str) and sent in IMAGE_TASK_TYPES:
        return sent
    if task.operation is Operation.IMAGINE:
        return "mj_img2img" if task.spec.get("refs", {}).get("image_prompts") else "mj_txt2img"
    return _TASK_TYPES.get(task.operation, f"mj_{task.operation.value}")


def param_json(task: Task) -> str:
    # the original request, compact with sorted keys as kie's own paramJson is
    return json.dumps(task.request, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: failed-task error codes (record-info errorCode): bad input 400, our fault 500, else 501
_TASK_ERROR_CODES = {
    ErrorCode.CONTENT_POLICY.value: 400,
    ErrorCode.INVALID_IMAGE_URL.value: 400,
    ErrorCode.IMAGE_TOO_LARGE.value: 400,
    ErrorCode.UNSUPPORTED_FORMAT.value: 400,
    ErrorCode.IMAGE_PROCESSING.value: 400,
    ErrorCode.INVALID_PROMPT.value: 400,
    ErrorCode.INVALID_PARAMETERS.value: 400,
    ErrorCode.NOT_FOUND.value: 400,
    ErrorCode.CANCELLED.value: 400,
    ErrorCode.SERVICE_ERROR.value: 500,
    ErrorCode.GENERATION_TIMEOUT.value: 500,
}


def success_flag(task: Task) -> int:
    """0 generating, 1 success, 2 failed, 3 created but generation failed (spec §2.4, §6)."""
    if task.status is Status.COMPLETED:
        return 1
    if task.status is Status.FAILED and task.started_at is not None:
        return 3
    return 2 if task.status.terminal else 0


def render_record(ctx_: Context, task: Task) -> dict[str, Any]:
    flag = success_flag(task)
    urls = result_urls(ctx_.signer, task) if flag == 1 else []
    failed = flag in (2, 3)
    return {
        "taskId": task.id,
        "taskType": task_type(task),
        "paramJson": param_json(task),
        "completeTime": iso(task.finished_at) if task.status.terminal else None,
        "resultInfoJson": {"resultUrls": [{"resultUrl": u} for u in urls]} if flag == 1 else None,
        "successFlag": flag,
        "createTime": iso(task.created_at),
        "errorCode": _TASK_ERROR_CODES.get(task.error_code or "", 501) if failed else None,
        "errorMessage": (task.error_message or "Image generation failed") if failed else None,
        # kie's newer job API fields, read by some clients instead of successFlag
        "state": {0: "waiting", 1: "success"}.get(flag, "fail"),
        "resultJson": json.dumps({"resultUrls": urls}) if flag == 1 else None,
    }


def callback_payload(ctx: Context, task: Task, event: str) -> dict[str, Any]:
    """The callback body of spec §2.5 (`resultUrls` is a plain string list here).

    kie calls back once, when the task ends; a non-terminal task renders as code 200 with no
    URLs and msg "waiting" (the deliverer should only queue terminal events for kie).
    """
    data = {"taskId": task.id, "promptJson": param_json(task), "resultUrls": []}
    if task.status is Status.COMPLETED:
        data["resultUrls"] = result_urls(ctx.signer, task)
        return {"code": 200, "msg": "success", "data": data}
    if task.status.terminal:
        return {"code": 500, "msg": task.error_message or "Image generation failed", "data": data}
    return {"code": 200, "msg": "waiting", "data": data}


# --------------------------------------------------------------------------- routes


@router.post("/generate")
async def generate(request: Request) -> JSONResponse:
    key = await authenticate(request)
    data = await read_json(request)
    if isinstance(data, dict) and data.get("taskType") in VIDEO_TASK_TYPES:
        raise _not_supported(f"taskType {data['taskType']}")
    body = parse_model(GenerateBody, data)
    callback = _validate_callback(request, body.callBackUrl)
    req = build_generate(body)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req)
    return _ok({"taskId": task.id})


async def _action(request: Request, operation: Operation, params: dict[str, Any]) -> JSONResponse:
    key = await authenticate(request)
    data = await read_json(request)
    body = parse_model(ActionBody, data)
    callback = _validate_callback(request, body.callBackUrl)
    req = build_action(body, operation, params)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req)
    return _ok({"taskId": task.id})


@router.post("/generateUpscale")
async def generate_upscale(request: Request) -> JSONResponse:
    return await _action(request, Operation.UPSCALE, UPSCALE_PARAMS)


@router.post("/upscale", include_in_schema=False)
async def upscale_quickstart(request: Request) -> JSONResponse:
    """The path kie's quickstart sample calls (a stale doc); same as generateUpscale."""
    return await _action(request, Operation.UPSCALE, UPSCALE_PARAMS)


@router.post("/generateVary")
async def generate_vary(request: Request) -> JSONResponse:
    return await _action(request, Operation.VARIATION, VARY_PARAMS)


@router.post("/generateVideoExtend")
async def generate_video_extend(request: Request) -> JSONResponse:
    await authenticate(request)
    raise _not_supported("Video extension")


@router.get("/record-info")
async def record_info(request: Request, taskId: str | None = None) -> JSONResponse:  # noqa: N803
    key = await authenticate(request)
    if not taskId:
        raise _invalid("taskId is required (query parameter)", "taskId")
    task = await ctx(request).service.get(key, taskId)
    return _ok(render_record(ctx(request), task))


__all__ = ["callback_payload", "error_response", "router"]
