"""EvoLink: POST /v1/images/generations (the model picks the operation) + /v1/tasks.

spec/api-dialects.md §1; seeds 000, 001, 004. Thin: wire JSON ⇄ core types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import evolink_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, Status, Task, TaskError, TaskRequest
from openmj.dialects.common import Context, authenticate, ctx, media_url, parse_model, read_json, result_urls
from openmj.jsonwire import JSONResponse
from openmj.media.signing import UrlSigner
from openmj.net import UnsafeURLError, check_url

DIALECT = "evolink"
MAX_PROMPT = 8192  # seed 000: prompt maxLength 8192
MAX_CALLBACK_URL = 2048  # seed 000: "URL length must not exceed 2048 characters"
MAX_BATCH = 50
MAX_PAGE = 1_000_000  # 20 million tasks at 20 a page; beyond that an offset only overflows SQL

router = APIRouter()

# --------------------------------------------------------------------------- errors

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large_error",
    429: "rate_limit_error",
}
_HTTP_CODES = {  # core code → EvoLink's HTTP error.code where it names one (seed 000)
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.INSUFFICIENT_QUOTA: "insufficient_quota",
    ErrorCode.RATE_LIMITED: "rate_limit_exceeded",
    ErrorCode.TOO_MANY_TASKS: "rate_limit_exceeded",
    ErrorCode.QUEUE_FULL: "rate_limit_exceeded",
    ErrorCode.INVALID_PARAMETERS: "invalid_request",
    ErrorCode.INVALID_PROMPT: "invalid_request",
    ErrorCode.TASK_NOT_READY: "invalid_request",
    ErrorCode.NOT_SUPPORTED: "invalid_request",
    ErrorCode.NOT_FOUND: "task_not_found",
}
_TASK_CODES = {  # core code → EvoLink task error.code (spec §1.5)
    ErrorCode.IMAGE_TOO_LARGE.value: "image_processing_error",
    ErrorCode.UNSUPPORTED_FORMAT.value: "image_processing_error",
    ErrorCode.INVALID_IMAGE_URL.value: "image_processing_error",
    ErrorCode.GENERATION_FAILED.value: "service_error",
    ErrorCode.INVALID_PROMPT.value: "invalid_parameters",
    ErrorCode.INVALID_REQUEST.value: "invalid_parameters",
}


def error_response(err: TaskError) -> JSONResponse:
    status = err.http_status
    body: dict[str, Any] = {
        "code": _HTTP_CODES.get(err.code, err.code.value),
        "message": err.message,
        "type": _TYPES.get(status, "api_error"),
    }
    if err.param:
        body["param"] = err.param
    body |= err.extra
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


# --------------------------------------------------------------------------- requests


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    speed: Literal["draft", "fast", "turbo"] | None = None


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str | None = None
    image_urls: list[str] | None = None
    model_params: ModelParams = Field(default_factory=ModelParams)
    callback_url: str | None = None
    quality: Literal["standard", "hd"] | None = None


Builder = Callable[[CreateBody], TaskRequest]


def _base(body: CreateBody, operation: Operation, *, speeds: tuple[str, ...]) -> TaskRequest:
    speed = body.model_params.speed or "fast"
    if speed not in speeds:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"model_params.speed '{speed}' is not available for {body.model}; "
            f"use one of: {', '.join(speeds)}",
            400,
            param="model_params.speed",
        )
    return TaskRequest(operation=operation, model=body.model, dialect=DIALECT, speed=Speed(speed))


def _parsed_prompt(text: str, *, required: bool) -> dict[str, Any] | None:
    if not text.strip():
        if required:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "prompt is required and cannot be empty", 400, param="prompt"
            )
        return None
    if len(text) > MAX_PROMPT:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            f"prompt is too long: {len(text)} characters, the maximum is {MAX_PROMPT}",
            400,
            param="prompt",
        )
    try:
        parsed, _stripped_speed = evolink_prompt(text)  # speed comes from model_params.speed (seed 000)
    except PromptError as exc:
        raise TaskError(ErrorCode.INVALID_PROMPT, exc.message, 400, param="prompt") from exc
    return parsed.to_dict()


def build_imagine(body: CreateBody) -> TaskRequest:
    req = _base(body, Operation.IMAGINE, speeds=("draft", "fast", "turbo"))
    req.prompt = body.prompt or ""
    req.parsed = _parsed_prompt(req.prompt, required=True)
    return req


class SourceParams(BaseModel):
    """model_params of the models that act on a finished task (seed 001, 004; spec §1.3)."""

    model_config = ConfigDict(extra="ignore")
    task_id: str = Field(min_length=1, max_length=128)
    image_number: int = Field(default=0, ge=0, le=3, strict=True)
    speed: Literal["fast", "turbo"] | None = None


class UpscaleParams(SourceParams):
    type: Literal["standard", "creative"] = "standard"


class VariationParams(SourceParams):
    type: Literal["subtle", "strong"] = "subtle"


class RemixParams(SourceParams):
    mode: Literal["strong", "subtle"] = "strong"


class OutpaintParams(SourceParams):
    scale: float = Field(default=1.5, ge=1.1, le=2.0)


class PanParams(SourceParams):
    direction: Literal["down", "right", "up", "left"] = "down"
    scale: float = Field(default=1.5, ge=1.1, le=3.0)


def _action(
    body: CreateBody, operation: Operation, params_cls: type[SourceParams], *, prompt: str
) -> tuple[TaskRequest, Any]:
    """prompt: "none" (ignored), "optional" (a remix prompt) or "required"."""
    params = parse_model(params_cls, body.model_params.model_dump(exclude_none=True))
    raw_speed = body.model_params.model_dump().get("speed")
    if raw_speed not in (None, "fast", "turbo"):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            "model_params.speed must be fast or turbo",
            400,
            param="model_params.speed",
        )
    req = TaskRequest(
        operation=operation, model=body.model, dialect=DIALECT, speed=Speed(params.speed or "fast")
    )
    req.parent_id = params.task_id
    req.parent_index = params.image_number
    if prompt != "none":
        req.prompt = body.prompt or ""
        req.parsed = _parsed_prompt(req.prompt, required=prompt == "required")
    return req, params


def build_upscale(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.UPSCALE, UpscaleParams, prompt="none")
    req.params = {"mode": "creative" if p.type == "creative" else "subtle", "factor": 2}
    return req


def build_variation(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.VARIATION, VariationParams, prompt="optional")
    req.params = {"strength": p.type}
    return req


def build_remix(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.REMIX, RemixParams, prompt="required")
    req.params = {"strength": p.mode}
    return req


def build_outpaint(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.ZOOM, OutpaintParams, prompt="optional")
    req.params = {"scale": p.scale}
    return req


def build_pan(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.PAN, PanParams, prompt="optional")
    req.params = {"direction": p.direction, "scale": p.scale}
    return req


def build_enhance(body: CreateBody) -> TaskRequest:
    req, _ = _action(body, Operation.ENHANCE, SourceParams, prompt="none")
    return req


class InpaintParams(SourceParams):
    mask: dict[str, Any]


class EditParams(SourceParams):
    canvas: dict[str, Any]
    img_pos: dict[str, Any]
    mask: dict[str, Any] | None = None


class CanvasParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    canvas: dict[str, Any]
    img_pos: dict[str, Any]
    mask: dict[str, Any]
    speed: Literal["fast", "turbo"] | None = None


class SpeedParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    speed: Literal["fast", "turbo"] | None = None


def _one_image(body: CreateBody) -> str:
    urls = body.image_urls or []
    if len(urls) != 1 or not isinstance(urls[0], str) or not urls[0]:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{body.model} needs exactly one URL in image_urls",
            400,
            param="image_urls",
        )
    return urls[0]


def build_inpaint(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.INPAINT, InpaintParams, prompt="optional")
    req.params = {"mask": p.mask}
    return req


def build_edit(body: CreateBody) -> TaskRequest:
    req, p = _action(body, Operation.EDIT, EditParams, prompt="required")
    req.params = {"canvas": p.canvas, "img_pos": p.img_pos, "mask": p.mask}
    return req


def _upload(body: CreateBody, operation: Operation, params_cls: type[BaseModel], *, prompt: bool) -> tuple:
    params = parse_model(params_cls, body.model_params.model_dump(exclude_none=True))
    req = TaskRequest(
        operation=operation,
        model=body.model,
        dialect=DIALECT,
        speed=Speed(getattr(params, "speed", None) or "fast"),
    )
    req.params = {"image_url": _one_image(body)}
    if prompt:
        req.prompt = body.prompt or ""
        req.parsed = _parsed_prompt(req.prompt, required=True)
    return req, params


def build_upload_paint(body: CreateBody) -> TaskRequest:
    req, p = _upload(body, Operation.UPLOAD_PAINT, CanvasParams, prompt=True)
    req.params |= {"canvas": p.canvas, "img_pos": p.img_pos, "mask": p.mask}
    return req


def build_retexture(body: CreateBody) -> TaskRequest:
    return _upload(body, Operation.RETEXTURE, SpeedParams, prompt=True)[0]


def build_remove_bg(body: CreateBody) -> TaskRequest:
    return _upload(body, Operation.REMOVE_BG, SpeedParams, prompt=False)[0]


MODELS: dict[str, Builder] = {
    "mj-v7": build_imagine,
    "mj-v7-upscale": build_upscale,
    "mj-v7-variation": build_variation,
    "mj-v7-remix": build_remix,
    "mj-v7-outpaint": build_outpaint,
    "mj-v7-pan": build_pan,
    "mj-v7-enhance": build_enhance,
    "mj-v7-inpaint": build_inpaint,
    "mj-v7-edit": build_edit,
    "mj-v7-upload-paint": build_upload_paint,
    "mj-v7-retexture": build_retexture,
    "mj-v7-remove-bg": build_remove_bg,
}


def _validate_callback(request: Request, url: str | None) -> None:
    if url is None:
        return
    try:
        check_url(url, ctx(request).net, https_only=True, max_length=MAX_CALLBACK_URL)
    except UnsafeURLError as exc:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Invalid callback_url: {exc.message}", 400, param="callback_url"
        ) from exc


# --------------------------------------------------------------------------- responses


def render(request: Request, task: Task, estimate: int | None) -> dict[str, Any]:
    return render_task(ctx(request).signer, task, estimate)


def callback_payload(context: Context, task: Task, event: str) -> dict[str, Any]:
    """EvoLink posts the task detail itself (spec §1.6), once it is final."""
    return render_task(context.signer, task, None)


def render_task(signer: UrlSigner, task: Task, estimate: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created": int(task.created_at),
        "id": task.id,
        "model": task.model,
        "object": "video.generation.task" if task.operation is Operation.VIDEO else "image.generation.task",
        "progress": task.progress if task.status is not Status.COMPLETED else 100,
        "status": task.status.value,
        "task_info": {"can_cancel": not task.status.terminal},
        "type": "video" if task.operation is Operation.VIDEO else "image",
        "usage": {
            "billing_rule": "per_call",
            "credits_reserved": task.credits_reserved,
            "user_group": task.user_group,
        },
    }
    if estimate is not None and not task.status.terminal:
        out["task_info"]["estimated_time"] = estimate
    if task.status.terminal:
        out["usage"]["credits_used"] = task.credits_charged
        if task.started_at and task.finished_at:
            out["duration"] = round(task.finished_at - task.started_at, 3)
    if task.status is Status.COMPLETED:
        out["results"] = result_urls(signer, task)
        out["result_data"] = [
            {
                "image_url": media_url(signer, task, im),
                "width": im.width,
                "height": im.height,
                "seed": im.seed,
            }
            for im in task.results
        ]
        if task.grid is not None:
            out["grid_url"] = media_url(signer, task, task.grid)
    if task.status in (Status.FAILED, Status.CANCELLED) and task.error_code:
        out["error"] = {
            "code": _TASK_CODES.get(task.error_code, task.error_code),
            "message": task.error_message or "",
            "type": "task_error",
        }
    return out


async def _render_with_estimate(request: Request, task: Task) -> dict[str, Any]:
    estimate = None if task.status.terminal else await ctx(request).service.estimate(task)
    return render(request, task, estimate)


# --------------------------------------------------------------------------- routes


@router.post("/v1/images/generations")
async def create(request: Request) -> JSONResponse:
    key = await authenticate(request)
    body = parse_model(CreateBody, await read_json(request))
    builder = MODELS.get(body.model)
    if builder is None:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"Unsupported model '{body.model}'; available: {', '.join(sorted(MODELS))}",
            400,
            param="model",
        )
    _validate_callback(request, body.callback_url)
    req = builder(body)
    req.callback_url = body.callback_url
    req.raw_request = body.model_dump(exclude_none=True)
    task = await ctx(request).service.submit(key, req)
    return JSONResponse(await _render_with_estimate(request, task))


@router.get("/v1/tasks/{task_id}")
async def get_task(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    task = await ctx(request).service.get(key, task_id)
    return JSONResponse(await _render_with_estimate(request, task))


@router.post("/v1/tasks/{task_id}/cancel")
async def cancel_task(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    task = await ctx(request).service.cancel(key, task_id)
    return JSONResponse(await _render_with_estimate(request, task))


class BatchBody(BaseModel):
    task_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)


@router.post("/v1/tasks/batch")
async def batch(request: Request) -> JSONResponse:
    key = await authenticate(request)
    body = parse_model(BatchBody, await read_json(request))
    tasks = await ctx(request).service.get_many(key, body.task_ids)
    return JSONResponse({"data": [render(request, t, None) for t in tasks]})


_STATUS_FILTER = {s.value for s in Status}
_TYPE_FILTER = {"image", "video"}


@router.get("/v1/tasks")
async def list_tasks(
    request: Request,
    status: str | None = None,
    type: str | None = None,  # noqa: A002 - the wire name
    model: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> JSONResponse:
    key = await authenticate(request)
    if status is not None and status not in _STATUS_FILTER:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Invalid status filter '{status}'", 400, param="status"
        )
    if type is not None and type not in _TYPE_FILTER:
        raise TaskError(ErrorCode.INVALID_PARAMETERS, f"Invalid type filter '{type}'", 400, param="type")
    if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= 100:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"page must be between 1 and {MAX_PAGE} and page_size between 1 and 100",
            400,
            param="page_size",
        )
    tasks, total = await ctx(request).service.list(
        key,
        status=status,
        video=None if type is None else type == "video",
        model=model,
        limit=page_size,
        offset=(page - 1) * page_size,
    )
    items = []
    for t in tasks:
        item = render(request, t, None)
        item.pop("results", None)  # list items carry no result links
        item.pop("result_data", None)
        item.pop("grid_url", None)
        items.append(item)
    return JSONResponse(
        {
            "object": "list",
            "data": items,
            "page": page,
            "page_size": page_size,
            "total": total,
            "has_more": page * page_size < total,
        }
    )


@router.get("/v1/credits")
async def credits(request: Request) -> JSONResponse:
    key = await authenticate(request)
    repo = ctx(request).service.repo
    used = await repo.used_credits(key.id)
    fresh = await repo.key_by_id_or_prefix(key.id)
    remaining = fresh.credits if fresh else key.credits
    wallet = {"remaining_credits": remaining, "used_credits": used}
    return JSONResponse(
        {"success": True, "data": {"user": wallet, "token": wallet | {"unlimited_credits": False}}}
    )
