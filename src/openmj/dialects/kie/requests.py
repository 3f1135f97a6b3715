"""kie.ai request bodies → `TaskRequest` (docs/api/kie.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import kie_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, TaskError, TaskRequest
from openmj.dialects.common import (
    invalid,
    prompt_error,
    version_text,
)

DIALECT = "kie"
MODEL = "midjourney"  # kie has no model field; the name that key model lists and prices see
MAX_PROMPT = 2000  # kie.ai's generate page: "Max length: 2000 characters"
MAX_FILE_URLS = 20


# --------------------------------------------------------------------------- requests

IMAGE_TASK_TYPES = ("mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference")
VIDEO_TASK_TYPES = ("mj_video", "mj_video_hd")
#: kie speed → queue speed; "Relax" is how kie itself writes it back in paramJson
_SPEEDS = {"relaxed": Speed.RELAX, "relax": Speed.RELAX, "fast": Speed.FAST, "turbo": Speed.TURBO}


class GenerateBody(BaseModel):
    """POST /api/v1/mj/generate (kie.ai's generate page). Unknown keys are ignored (kie adds fields often)."""

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
    enableTranslation: bool | None = None  # translate the prompt to English first (docs/prompt.md)
    callBackUrl: str | None = None


class ActionBody(BaseModel):
    """POST generateUpscale / generateVary: `{taskId, imageIndex 0–3, waterMark, callBackUrl}`."""

    model_config = ConfigDict(extra="ignore")
    taskId: str = Field(min_length=1, max_length=128)
    # the quickstart's sample class sends `index` (a stale doc); accept both spellings
    imageIndex: int = Field(ge=0, le=3, strict=True, validation_alias=AliasChoices("imageIndex", "index"))
    waterMark: str | None = None
    callBackUrl: str | None = None


def _speed(value: str | None) -> Speed:
    if value is None or value == "":
        return Speed.FAST  # kie: speed is optional for omni reference; fast is MJ's default mode
    speed = _SPEEDS.get(value.strip().lower())
    if speed is None:
        raise invalid(f"Invalid speed '{value}': use relaxed, fast or turbo", "speed")
    return speed


def _file_urls(body: GenerateBody) -> list[str]:
    urls = body.fileUrls if body.fileUrls else ([body.fileUrl] if body.fileUrl else [])
    urls = [u for u in urls if u]  # kie samples send "" for "no file"
    for url in urls:
        # they are written into the prompt as --sref/--oref values: one token, no braces
        if any(ch.isspace() or ch in "{}" for ch in url):
            raise invalid(f"Invalid file URL: {url[:80]!r}", "fileUrls")
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
            raise invalid("fileUrls (or fileUrl) is required for mj_img2img", "fileUrls")
        params["image_urls"] = urls
    elif body.taskType == "mj_style_reference":
        if not urls:
            raise invalid("fileUrls (or fileUrl) is required for mj_style_reference", "fileUrls")
        text = f"{text} --sref {' '.join(urls)}"
    elif body.taskType == "mj_omni_reference":
        if len(urls) != 1:
            raise invalid("mj_omni_reference takes exactly one image in fileUrls (or fileUrl)", "fileUrls")
        text = f"{text} --oref {urls[0]}"
    # mj_txt2img: kie says "leave empty for text-to-image"; its own sample still sends a
    # fileUrls placeholder, so file URLs are ignored here rather than refused.
    fields = {
        "aspectRatio": body.aspectRatio,
        "version": version_text(body.version),
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
        raise prompt_error(exc) from exc
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
