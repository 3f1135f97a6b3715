"""APIXO request bodies → `TaskRequest`; `input` accepts every name any of its docs used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import apixo_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, TaskError, TaskRequest
from openmj.dialects.common import (
    callback_url,
    invalid,
    prompt_error,
    version_text,
)

DIALECT = "apixo"
MODEL = "midjourney"  # the model id in the path; the name key model lists and prices see
MAX_PROMPT = 2000  # APIXO: "keep prompts under 2000 characters for portable requests"
MAX_IMAGE_URLS = 20  # v3: text-to-image accepts up to 20 image prompts


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
    enableTranslation: bool | None = None  # translate the prompt to English first (docs/prompt.md)
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
        return Speed.FAST  # APIXO's Midjourney page: default fast
    speed = _SPEEDS.get(inp.speed.strip().lower())
    if speed is None or (speed is Speed.DRAFT and not draft):
        allowed = "fast, turbo, draft or relaxed" if draft else "fast, turbo or relaxed"
        raise invalid(f"Invalid input.speed '{inp.speed}' for mode {inp.mode}: use {allowed}", "input.speed")
    return speed


def _fields(inp: Input) -> dict[str, Any]:
    version = version_text(inp.version)
    if version is not None and version[:1].isdigit():
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
        raise prompt_error(exc, "input.prompt") from exc


def _request(inp: Input, operation: Operation, speed: Speed) -> TaskRequest:
    return TaskRequest(
        operation=operation, model=MODEL, dialect=DIALECT, prompt=inp.prompt or "", speed=speed
    )


def _one_image(inp: Input) -> str:
    if not inp.image_urls or len(inp.image_urls) != 1:
        raise invalid(f"input.image_urls must hold exactly 1 image for mode {inp.mode}", "input.image_urls")
    return inp.image_urls[0]


def _editor_params(inp: Input) -> dict[str, Any]:
    """canvas / img_pos / mask as the core names them; absent ones are left to the core's rules."""
    given = {"canvas": inp.canvas, "img_pos": inp.img_pos, "mask": inp.mask}
    return {k: v for k, v in given.items() if v is not None}


def build_generate(inp: Input) -> TaskRequest:
    """text-to-image (image_urls are optional image prompts) and image-to-image (≥ 1 required)."""
    if inp.mode == "image-to-image" and not inp.image_urls:
        raise invalid("input.image_urls is required for image-to-image", "input.image_urls")
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
            raise invalid("image-edit needs input.image_urls (1 image) or input.taskId", "input.image_urls")
        return build_upload_paint(inp)
    req = _source(inp, Operation.EDIT)
    req.params = _editor_params(inp)
    req.parsed = _parsed(inp, required=True)
    return req


def _source(inp: Input, operation: Operation) -> TaskRequest:
    if inp.taskId is None:
        raise invalid(f"Missing required field: input.taskId (mode {inp.mode})", "input.taskId")
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
        raise invalid("input.type for vary must be 0 (subtle) or 1 (strong)", "input.type")
    req.params = {"strength": kind}
    req.parsed = _parsed(inp, required=False)  # a prompt makes it a remix
    return req


#: upscale `type` (APIXO's Midjourney page "Upscale types") → core upscale options
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
        raise invalid("input.type for upscale must be 0, 1, 2 or 3", "input.type")
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
    url = callback_url(request, body.callback_url, "callback_url")
    if url is None:
        raise invalid("callback_url is required when request_type is callback", "callback_url")
    return url
