"""EvoLink request bodies → `TaskRequest`: the model names the operation (docs/api/evolink.md).

One table row per model: which operation, which `model_params`, whether it takes a prompt, and
how its fields become the core's parameters. Nothing here decides a rule; the core does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import EVOLINK_MAX_LENGTH, evolink_prompt
from openmj.core.tasks import ErrorCode, Operation, Speed, TaskError, TaskRequest
from openmj.dialects.common import invalid, parse_model, prompt_error

DIALECT = "evolink"
MAX_BATCH = 50
ACTION_SPEEDS = ("fast", "turbo")
#: the V7 models EvoLink also sells as mj-v8.1-… and mj-v8.2-… (api-dialects.md §1.3)
V8_ACTIONS = ("", "variation", "remix", "retexture", "upload-paint", "edit", "remove-bg")
V82_MAX_PROMPT = 2048
V82_EDIT_MAX_PROMPT = 8100


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
    # 0–3 of a grid; mj-v8.2 also 0–23 of a draft's 24 sketches (each model's limit: `Model.max_index`)
    image_number: int = Field(default=0, ge=0, le=23, strict=True)
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
    version: str = "7"  # the Midjourney version it runs (routing: core/routing.py)
    speeds: tuple[str, ...] = ACTION_SPEEDS  # model_params.speed of an action model
    max_index: int = 3  # the highest image_number
    max_prompt: int = EVOLINK_MAX_LENGTH


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


def _series(version: str, base: dict[str, Model], **changes: Any) -> dict[str, Model]:
    """The V7 models of `base` renamed for another version (mj-v8.1-remix …), same fields."""
    out = {}
    for name, model in base.items():
        suffix = name.removeprefix("mj-v7")
        out[f"mj-v{version}{suffix}"] = replace(model, version=version, **changes)
    return out


_V8_BASE = {k: MODELS[k] for k in MODELS if k.removeprefix("mj-v7").lstrip("-") in V8_ACTIONS}
# EvoLink's V8.1 page: generation at draft|fast (turbo accepted), actions at fast only; prompts up
# to 8192 characters; no pan, zoom, upscale, enhance or inpaint models
MODELS |= _series("8.1", _V8_BASE, speeds=("fast",))
# V8.2: prompts up to 2048 characters (8100 for edit, remix, retexture); image_number 0–23 so a
# draft's 24 sketches can be picked
MODELS |= _series("8.2", _V8_BASE, max_index=23, max_prompt=V82_MAX_PROMPT)
for _name in ("mj-v8.2-edit", "mj-v8.2-remix", "mj-v8.2-retexture"):
    MODELS[_name] = replace(MODELS[_name], max_prompt=V82_EDIT_MAX_PROMPT)


def _parsed_prompt(
    text: str, *, required: bool, version: str = "7", max_length: int = EVOLINK_MAX_LENGTH
) -> dict[str, Any] | None:
    if not text.strip():
        if required:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "prompt is required and cannot be empty", 400, param="prompt"
            )
        return None
    if len(text) > max_length:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            f"prompt is too long: {len(text)} characters, the maximum is {max_length}",
            400,
            param="prompt",
        )
    try:
        parsed, _stripped_speed = evolink_prompt(text, version)  # model_params.speed sets the speed
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
    if model.operation is not Operation.IMAGINE and raw.get("speed") not in (None, *model.speeds):
        raise invalid(
            f"model_params.speed '{raw['speed']}' is not available for {body.model}; "
            f"use one of: {', '.join(model.speeds)}",
            "model_params.speed",
        )
    params = parse_model(model.params, raw)
    if getattr(params, "image_number", 0) > model.max_index:
        raise invalid(
            f"Invalid parameter 'image_number': must be between 0 and {model.max_index} for {body.model}",
            "image_number",
        )
    req = TaskRequest(
        operation=model.operation,
        model=body.model,
        dialect=DIALECT,
        speed=Speed(getattr(params, "speed", None) or "fast"),
        params=model.options(params),
        prompt_version=model.version,
    )
    if body.quality is not None:
        req.params["quality"] = body.quality  # the core decides where it is allowed
    if model.input == "source":
        req.parent_id, req.parent_index = params.task_id, params.image_number  # type: ignore[attr-defined]
    elif model.input == "upload":
        req.params["image_url"] = _one_image(body)
    if model.prompt != "none":
        req.prompt = body.prompt or ""
        req.parsed = _parsed_prompt(
            req.prompt,
            required=model.prompt == "required",
            version=model.version,
            max_length=model.max_prompt,
        )
    return req
