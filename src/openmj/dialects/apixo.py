"""APIXO: POST /api/v1/generateTask/midjourney, GET /api/v1/statusTask/midjourney, balance.

spec/api-dialects.md §3, seed 002. Thin: wire JSON ⇄ core types; the rules live in the service.
Envelope `{code, message, data}`; errors use the real HTTP status (§3.5) with the same `code`.
Three generations of APIXO's docs coexist, so `input` accepts every name any of them used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import apixo_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, Status, Task, TaskError, TaskRequest
from openmj.dialects.common import Context, authenticate, ctx, parse_model, read_json, result_urls
from openmj.jsonwire import JSONResponse
from openmj.net import UnsafeURLError, check_url

DIALECT = "apixo"
MODEL = "midjourney"  # the model id in the path; the name key model lists and prices see
MAX_PROMPT = 2000  # APIXO: "keep prompts under 2000 characters for portable requests"
MAX_CALLBACK_URL = 2048  # same limit as the callback deliverer (callbacks.MAX_URL_LENGTH)
MAX_IMAGE_URLS = 20  # v3: text-to-image accepts up to 20 image prompts

router = APIRouter(prefix="/api/v1")

# --------------------------------------------------------------------------- errors

#: core codes whose natural HTTP status is not APIXO's (§3.5: 400 401 402 403 404 429 500 503,
#: plus 413 for a body over the size limit, in the same envelope)
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.KEY_DISABLED: 401,
    ErrorCode.KEY_EXPIRED: 401,
    ErrorCode.CONTENT_POLICY: 403,
}
_MESSAGES = {
    400: "Invalid request",
    401: "Unauthorized",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not found",
    413: "Payload too large",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}


def error_response(err: TaskError) -> JSONResponse:
    status = _STATUS.get(err.code, err.http_status)
    if status not in _MESSAGES:  # 405, 413, …: APIXO documents none of them
        status = 500 if status >= 500 else 400
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    # §3.5: {"code":400,"message":"Invalid request","data":{"error":"Missing required field: …"}}
    body = {"code": status, "message": _MESSAGES[status], "data": {"error": err.message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def _invalid(message: str, param: str) -> TaskError:
    return TaskError(ErrorCode.INVALID_PARAMETERS, message, 400, param=param)


# --------------------------------------------------------------------------- requests

Mode = Literal[
    "text-to-image",
    "image-to-image",
    "upload-paint",
    "image-edit",
    "vary",
    "upscale",
    "reroll",
    "enhance",
]


class Input(BaseModel):
    """`input` of every mode; v1 and v2/v3 names both accepted (the newer one wins in the parser)."""

    model_config = ConfigDict(extra="ignore")
    mode: Mode
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    version: str | int | float | None = None
    speed: str | None = None
    enableTranslation: bool | None = None  # accepted; openmj does not translate (docs/api/apixo.md)
    # integers/ratios, checked by the prompt parser with Midjourney's own messages and ranges
    aspect_ratio: Any = None
    aspect: Any = None
    variety: Any = None
    chaos: Any = None
    stylization: Any = None
    stylize: Any = None
    weirdness: Any = None
    weird: Any = None
    image_urls: list[str] | None = Field(default=None, max_length=MAX_IMAGE_URLS)
    # editor shapes: passed through, checked by the core (operations.validate_mask, canvas boxes)
    mask: dict[str, Any] | None = None
    canvas: dict[str, Any] | None = None
    img_pos: dict[str, Any] | None = Field(default=None, validation_alias=AliasChoices("imgPos", "img_pos"))
    taskId: str | None = Field(
        default=None, min_length=1, max_length=128, validation_alias=AliasChoices("taskId", "task_id")
    )
    imageIndex: int | None = Field(
        default=None, ge=0, le=3, strict=True, validation_alias=AliasChoices("imageIndex", "image_index")
    )
    type: int | str | None = None


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_type: Literal["async", "callback"] = "async"
    callback_url: str | None = None
    provider: Literal["auto", "value", "official"] | None = None  # routing upstream: no meaning here
    source: str | None = None  # a client tag, ignored
    input: Input


#: APIXO speed → queue speed; relaxed "is converted to fast for execution and billing" (APIXO docs)
_SPEEDS = {"fast": Speed.FAST, "turbo": Speed.TURBO, "draft": Speed.DRAFT, "relaxed": Speed.FAST}


def _speed(inp: Input, *, draft: bool) -> Speed:
    if inp.speed is None or inp.speed == "":
        return Speed.FAST  # seed 002: default fast
    speed = _SPEEDS.get(inp.speed.strip().lower())
    if speed is None or (speed is Speed.DRAFT and not draft):
        allowed = "fast, turbo, draft or relaxed" if draft else "fast, turbo or relaxed"
        raise _invalid(f"Invalid input.speed '{inp.speed}' for mode {inp.mode}: use {allowed}", "input.speed")
    return speed


def _fields(inp: Input) -> dict[str, Any]:
    version = inp.version
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if isinstance(version, int | float) or (isinstance(version, str) and version[:1].isdigit()):
        version = f"v{version}"  # "7" / 6.1 → v7 / v6.1, the names APIXO documents
    return {
        "aspect_ratio": inp.aspect_ratio,
        "aspect": inp.aspect,
        "variety": inp.variety,
        "chaos": inp.chaos,
        "stylization": inp.stylization,
        "stylize": inp.stylize,
        "weirdness": inp.weirdness,
        "weird": inp.weird,
        "version": version,
        "speed": inp.speed,
    }


def _parsed(inp: Input, *, required: bool) -> dict[str, Any] | None:
    text = inp.prompt or ""
    if not text.strip():
        if required:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "Missing required field: input.prompt", 400, param="input.prompt"
            )
        return None
    try:
        return apixo_prompt(text, _fields(inp)).to_dict()
    except PromptError as exc:
        raise TaskError(ErrorCode.INVALID_PROMPT, exc.message, 400, param="input.prompt") from exc


def _request(inp: Input, operation: Operation, speed: Speed) -> TaskRequest:
    return TaskRequest(
        operation=operation, model=MODEL, dialect=DIALECT, prompt=inp.prompt or "", speed=speed
    )


def _one_image(inp: Input) -> str:
    if not inp.image_urls or len(inp.image_urls) != 1:
        raise _invalid(f"input.image_urls must hold exactly 1 image for mode {inp.mode}", "input.image_urls")
    return inp.image_urls[0]


def _editor_params(inp: Input) -> dict[str, Any]:
    """canvas / img_pos / mask as the core names them; absent ones are left to the core's rules."""
    given = {"canvas": inp.canvas, "img_pos": inp.img_pos, "mask": inp.mask}
    return {k: v for k, v in given.items() if v is not None}


def build_generate(inp: Input) -> TaskRequest:
    """text-to-image (image_urls are optional image prompts) and image-to-image (≥ 1 required)."""
    if inp.mode == "image-to-image" and not inp.image_urls:
        raise _invalid("input.image_urls is required for image-to-image", "input.image_urls")
    req = _request(inp, Operation.IMAGINE, _speed(inp, draft=True))
    req.parsed = _parsed(inp, required=True)
    if inp.image_urls:
        req.params["image_urls"] = list(inp.image_urls)
    return req


def build_upload_paint(inp: Input) -> TaskRequest:
    req = _request(inp, Operation.UPLOAD_PAINT, _speed(inp, draft=False))
    req.params = {"image_url": _one_image(inp), **_editor_params(inp)}
    req.parsed = _parsed(inp, required=True)
    return req


def build_image_edit(inp: Input) -> TaskRequest:
    """v3 image-edit: an uploaded image (image_urls) is an upload-paint; with a taskId (an openmj
    extension) it is the editor on a finished image, Midjourney's Edit."""
    if inp.taskId is None:
        if not inp.image_urls:
            raise _invalid("image-edit needs input.image_urls (1 image) or input.taskId", "input.image_urls")
        return build_upload_paint(inp)
    req = _source(inp, Operation.EDIT)
    req.params = _editor_params(inp)
    req.parsed = _parsed(inp, required=True)
    return req


def _source(inp: Input, operation: Operation) -> TaskRequest:
    if inp.taskId is None:
        raise _invalid(f"Missing required field: input.taskId (mode {inp.mode})", "input.taskId")
    req = _request(inp, operation, _speed(inp, draft=False))
    req.parent_id = inp.taskId
    req.parent_index = inp.imageIndex if inp.imageIndex is not None else 0
    return req


#: vary `type`: 0/1 as the MJ relays number them (0 subtle, 1 strong), or the names
_VARY_TYPES = {
    "0": "subtle",
    "1": "strong",
    "subtle": "subtle",
    "strong": "strong",
    "low": "subtle",
    "high": "strong",
}
VARY_DEFAULT = "strong"  # Midjourney's V buttons are Vary (Strong) by default ("high variation mode")


def build_vary(inp: Input) -> TaskRequest:
    req = _source(inp, Operation.VARIATION)
    kind = VARY_DEFAULT if inp.type is None else _VARY_TYPES.get(str(inp.type).strip().lower())
    if kind is None:
        raise _invalid("input.type for vary must be 0 (subtle) or 1 (strong)", "input.type")
    req.params = {"strength": kind}
    req.parsed = _parsed(inp, required=False)  # a prompt makes it a remix
    return req


#: upscale `type` (seed 002 "Upscale types") → core upscale options
UPSCALE_TYPES: dict[int, dict[str, Any]] = {
    0: {"mode": "subtle", "factor": 2},  # Standard HD: MJ's Upscale (Subtle), 2×
    1: {"mode": "creative", "factor": 2},  # Creative HD: Upscale (Creative) adds details, 2×
    2: {"mode": "subtle", "factor": 2},  # 2x HD
    3: {"mode": "subtle", "factor": 4},  # 4x HD
}


def build_upscale(inp: Input) -> TaskRequest:
    req = _source(inp, Operation.UPSCALE)
    raw = 0 if inp.type is None else inp.type
    kind = int(raw) if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()) else -1
    if kind not in UPSCALE_TYPES:
        raise _invalid("input.type for upscale must be 0, 1, 2 or 3", "input.type")
    req.params = dict(UPSCALE_TYPES[kind])
    return req


def build_reroll(inp: Input) -> TaskRequest:
    req = _source(inp, Operation.REROLL)
    req.parent_index = None  # reroll acts on the whole task
    req.parsed = _parsed(inp, required=False)
    return req


def build_enhance(inp: Input) -> TaskRequest:
    return _source(inp, Operation.ENHANCE)


BUILDERS: dict[str, Callable[[Input], TaskRequest]] = {
    "text-to-image": build_generate,
    "image-to-image": build_generate,
    "upload-paint": build_upload_paint,
    "image-edit": build_image_edit,
    "vary": build_vary,
    "upscale": build_upscale,
    "reroll": build_reroll,
    "enhance": build_enhance,
}


def _callback(request: Request, body: SubmitBody) -> str | None:
    """APIXO calls back only in callback mode; in async mode a callback_url is ignored."""
    if body.request_type != "callback":
        return None
    if not body.callback_url:
        raise _invalid("callback_url is required when request_type is callback", "callback_url")
    try:
        check_url(body.callback_url, ctx(request).net, https_only=True, max_length=MAX_CALLBACK_URL)
    except UnsafeURLError as exc:
        raise _invalid(f"Invalid callback_url: {exc.message}", "callback_url") from exc
    return body.callback_url


# --------------------------------------------------------------------------- responses

_STATES = {
    Status.PENDING: "pending",
    Status.MODAL: "pending",  # a midjourney-proxy task waiting for its modal input
    Status.PROCESSING: "processing",
    Status.COMPLETED: "success",
    Status.FAILED: "failed",
    Status.CANCELLED: "failed",
}
#: core task error code → APIXO failCode (§3.5)
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


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def render_status(ctx_: Context, task: Task) -> dict[str, Any]:
    """statusTask `data` (§3.3): times in Unix ms; resultJson is a JSON string."""
    out: dict[str, Any] = {
        "taskId": task.id,
        "state": _STATES[task.status],
        "createTime": _ms(task.created_at),
    }
    if task.status.terminal:
        done = task.finished_at or task.created_at
        out["completeTime"] = _ms(done)
    if task.status is Status.COMPLETED:
        out["resultJson"] = json.dumps({"resultUrls": result_urls(ctx_.signer, task)})
        out["costTime"] = out["completeTime"] - out["createTime"]
    elif task.status.terminal:
        out["failCode"] = FAIL_CODES.get(task.error_code or "", DEFAULT_FAIL_CODE)
        out["failMsg"] = task.error_message or "Generation failed"
    return out


def callback_payload(ctx: Context, task: Task, event: str) -> dict[str, Any]:
    """The webhook body (§3.4): exactly the statusTask envelope."""
    return {"code": 200, "message": "success", "data": render_status(ctx, task)}


# --------------------------------------------------------------------------- routes


def _model(model: str) -> None:
    if model != MODEL:
        raise TaskError(ErrorCode.NOT_FOUND, f"Model not found: {model} (this server serves midjourney)", 404)


@router.post("/generateTask/{model}")
async def generate_task(request: Request, model: str) -> JSONResponse:
    key = await authenticate(request)
    _model(model)
    data = await read_json(request)
    body = parse_model(SubmitBody, data)
    callback = _callback(request, body)
    req = BUILDERS[body.input.mode](body.input)
    req.callback_url = callback
    req.raw_request = data
    task = await ctx(request).service.submit(key, req)
    return _ok({"taskId": task.id})


@router.get("/statusTask/{model}")
async def status_task(request: Request, model: str, taskId: str | None = None) -> JSONResponse:  # noqa: N803
    key = await authenticate(request)
    _model(model)
    if not taskId:
        raise _invalid("Missing required query parameter: taskId", "taskId")
    task = await ctx(request).service.get(key, taskId)
    return _ok(render_status(ctx(request), task))


@router.get("/apikeys/current-balance")
async def current_balance(request: Request) -> JSONResponse:
    key = await authenticate(request)
    repo = ctx(request).service.repo
    fresh = await repo.key_by_id_or_prefix(key.id)
    remaining = fresh.credits if fresh else key.credits
    used = await repo.used_credits(key.id)
    return _ok({"balance": remaining, "usedBalance": used, "unit": "credits"})


__all__ = ["callback_payload", "error_response", "router"]
