"""EvoLink request bodies → `TaskRequest`: the model names the operation (docs/api/evolink.md).

One table row per model: which operation, which `model_params`, whether it takes a prompt, and
how its fields become the core's parameters. Nothing here decides a rule; the core does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import EVOLINK_MAX_LENGTH, evolink_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, TaskError, TaskRequest
from openmj.dialects.common import invalid, parse_model, prompt_error

DIALECT = "evolink"
MAX_BATCH = 50
ACTION_SPEEDS = ("fast", "turbo")


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    speed: Literal["draft", "fast", "turbo"] | None = None


class CreateBody(BaseModel):
    """POST /v1/images/generations. `model` picks the operation; its fields go in `model_params`."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="mj-v7 (imagine) or one of its action models, e.g. mj-v7-upscale")
    prompt: str | None = Field(default=None, description="Midjourney prompt, up to 8192 characters")
    image_urls: list[str] | None = Field(default=None, description="the one input image of upload models")
    model_params: ModelParams = Field(default_factory=ModelParams)
    callback_url: str | None = Field(default=None, description="https URL called when the task ends")
    quality: Literal["standard", "hd"] | None = None


class BatchBody(BaseModel):
    task_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)


# --------------------------------------------------------------------------- model_params


class ImagineParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    speed: Literal["draft", "fast", "turbo"] | None = None


class SourceParams(BaseModel):
    """model_params of the models that act on a finished task."""

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


class InpaintParams(SourceParams):
    mask: dict[str, Any]


class EditParams(SourceParams):
    canvas: dict[str, Any]
    img_pos: dict[str, Any]
    mask: dict[str, Any] | None = None


class SpeedParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    speed: Literal["fast", "turbo"] | None = None


class CanvasParams(SpeedParams):
    canvas: dict[str, Any]
    img_pos: dict[str, Any]
    mask: dict[str, Any]


# --------------------------------------------------------------------------- the model table


@dataclass(frozen=True)
class Model:
    operation: Operation
    params: type[BaseModel]  # what model_params must hold
    prompt: Literal["none", "optional", "required"]
    #: model_params → the core's operation parameters
    options: Callable[[Any], dict[str, Any]] = lambda p: {}
    #: "text" (a prompt), "source" (a finished task: task_id, image_number), "upload" (image_urls)
    input: Literal["text", "source", "upload"] = "source"


def _canvas(p: Any) -> dict[str, Any]:
    return {"canvas": p.canvas, "img_pos": p.img_pos, "mask": p.mask}


MODELS: dict[str, Model] = {
    "mj-v7": Model(Operation.IMAGINE, ImagineParams, "required", input="text"),
    "mj-v7-upscale": Model(
        Operation.UPSCALE,
        UpscaleParams,
        "none",
        lambda p: {"mode": "creative" if p.type == "creative" else "subtle", "factor": 2},
    ),
    "mj-v7-variation": Model(
        Operation.VARIATION, VariationParams, "optional", lambda p: {"strength": p.type}
    ),
    "mj-v7-remix": Model(Operation.REMIX, RemixParams, "required", lambda p: {"strength": p.mode}),
    "mj-v7-outpaint": Model(Operation.ZOOM, OutpaintParams, "optional", lambda p: {"scale": p.scale}),
    "mj-v7-pan": Model(
        Operation.PAN, PanParams, "optional", lambda p: {"direction": p.direction, "scale": p.scale}
    ),
    "mj-v7-enhance": Model(Operation.ENHANCE, SourceParams, "none"),
    "mj-v7-inpaint": Model(Operation.INPAINT, InpaintParams, "optional", lambda p: {"mask": p.mask}),
    "mj-v7-edit": Model(Operation.EDIT, EditParams, "required", _canvas),
    "mj-v7-upload-paint": Model(Operation.UPLOAD_PAINT, CanvasParams, "required", _canvas, "upload"),
    "mj-v7-retexture": Model(Operation.RETEXTURE, SpeedParams, "required", input="upload"),
    "mj-v7-remove-bg": Model(Operation.REMOVE_BG, SpeedParams, "none", input="upload"),
}


def _parsed_prompt(text: str, *, required: bool) -> dict[str, Any] | None:
    if not text.strip():
        if required:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "prompt is required and cannot be empty", 400, param="prompt"
            )
        return None
    if len(text) > EVOLINK_MAX_LENGTH:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            f"prompt is too long: {len(text)} characters, the maximum is {EVOLINK_MAX_LENGTH}",
            400,
            param="prompt",
        )
    try:
        parsed, _stripped_speed = evolink_prompt(text)  # the speed is model_params.speed's to set
    except PromptError as exc:
        raise prompt_error(exc) from exc
    return parsed.to_dict()


def _one_image(body: CreateBody) -> str:
    urls = body.image_urls or []
    if len(urls) != 1 or not isinstance(urls[0], str) or not urls[0]:
        raise invalid(f"{body.model} needs exactly one URL in image_urls", "image_urls")
    return urls[0]


def build(body: CreateBody) -> TaskRequest:
    model = MODELS.get(body.model)
    if model is None:
        raise invalid(f"Unsupported model '{body.model}'; available: {', '.join(sorted(MODELS))}", "model")
    raw = body.model_params.model_dump(exclude_none=True)
    if model.operation is not Operation.IMAGINE and raw.get("speed") not in (None, *ACTION_SPEEDS):
        raise invalid(
            f"model_params.speed '{raw['speed']}' is not available for {body.model}; "
            f"use one of: {', '.join(ACTION_SPEEDS)}",
            "model_params.speed",
        )
    params = parse_model(model.params, raw)
    req = TaskRequest(
        operation=model.operation,
        model=body.model,
        dialect=DIALECT,
        speed=Speed(getattr(params, "speed", None) or "fast"),
        params=model.options(params),
    )
    if model.input == "source":
        req.parent_id, req.parent_index = params.task_id, params.image_number  # type: ignore[attr-defined]
    elif model.input == "upload":
        req.params["image_url"] = _one_image(body)
    if model.prompt != "none":
        req.prompt = body.prompt or ""
        req.parsed = _parsed_prompt(req.prompt, required=model.prompt == "required")
    return req
