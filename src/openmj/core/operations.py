"""What each operation needs and accepts; turns a request into the task's stored `spec`.

The spec is fixed at submit time, so a task re-run after a crash does exactly the same work.

The contract for dialects (`TaskRequest` fields per operation; `parent_index` is 0-based):

| operation | parent | parsed prompt | params |
|---|---|---|---|
| IMAGINE | – | required | `image_urls`: extra image prompts (http(s) or `data:` URIs) |
| UPSCALE | task + index | – | `mode` subtle or creative, `factor` 1 (separate from grid), 2, 4 |
| VARIATION | task + index | optional (remix) | `strength` subtle or strong |
| REMIX | task + index | required | `strength` subtle or strong |
| ZOOM | task + index | optional | `scale` 1.0–2.0 |
| PAN | task + index | optional | `direction` up or down or left or right, `scale` 1.1–3.0 |
| MAKE_SQUARE | task + index | optional | – |
| ENHANCE | task + index (a draft task) | – | – |
| REROLL | task | optional | – |
| INPAINT | task + index | optional | `mask`: `{"areas": [{width, height, points}]}` or `{"url"}` |
| EDIT | task + index | required | `canvas` {width,height}, `img_pos` {width,height,x,y}, optional `mask` |
| UPLOAD_PAINT | – | required | `image_url`, `canvas`, `img_pos`, `mask` |
| RETEXTURE | – | required | `image_url` |
| REMOVE_BG | – | – | `image_url` |
| BLEND | – | optional | `image_urls` (2–5), `dimensions` "1:1"  or  "2:3"  or  "3:2" |
| DESCRIBE | – | – | `image_url` |
| SHORTEN | – | required | – |
"""

from __future__ import annotations

from typing import Any

from openmj.core import actions, words
from openmj.core.checks import (
    action_prompt,
    choice,
    completed,
    image_url,
    number,
    prompt_spec,
    require_finished,
    source_of,
    string_list,
)
from openmj.core.references import references
from openmj.core.routing import ModelCaps, require_offered
from openmj.core.spec import MaskSpec, OptionsSpec, PromptSpec, Spec
from openmj.core.tasks import ErrorCode, Operation, Speed, Task, TaskError, TaskRequest
from openmj.core.video import VIDEO_OPERATIONS, VIDEO_VALIDATORS

#: operations whose seed comes from the prompt's --seed; every other action draws new seeds
#: (Midjourney: "seeds influence only the initial grid"; Reroll keeps --seed)
PROMPT_SEEDED = frozenset({Operation.IMAGINE, Operation.REROLL})


def require_capability(operation: Operation, caps: ModelCaps) -> None:
    """Refuse an operation the configured models cannot run, before its fields are read."""
    if caps.operations is not None and operation not in caps.operations:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            f"'{operation.value}' is not supported by this server: none of its providers offers it",
            400,
        )
    if operation is Operation.DESCRIBE and not caps.describe:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            "Describe is not supported by this server (feature disabled): no captioning model is "
            "configured (--caption-model)",
            400,
        )
    if operation in VIDEO_OPERATIONS and not caps.video:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            "Video is not supported by this server (feature disabled): "
            f"the model '{caps.name}' has no video model configured (--video-model)",
            400,
        )


def request_version(req: TaskRequest, parent: Task | None) -> str:
    """The Midjourney version a request is for: its prompt's (`--v`, `--niji`, or the dialect's
    version context), else its source task's, else the dialect's (EvoLink's model name, kie's
    `version`, midjourney-proxy's `botType`)."""
    if req.parsed and req.parsed.get("effective_model"):
        return str(req.parsed["effective_model"])
    if parent is not None:
        version = parent.spec.get("version") or parent.spec.get("prompt", {}).get("effective_model")
        if version:
            return str(version)
    return req.prompt_version


def validate_request(req: TaskRequest, parent: Task | None, caps: ModelCaps | None = None) -> Spec:
    """Check the request against its operation's rules; return the spec the engine will read."""
    validator = VALIDATORS.get(req.operation)
    if validator is None:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED, f"Operation '{req.operation.value}' is not supported yet", 400
        )
    caps = caps or ModelCaps()
    require_capability(req.operation, caps)
    spec = validator(req, parent)
    spec["version"] = request_version(req, parent)
    _quality(req, spec)
    _check_caps(spec, req, caps)
    mark = req.params.get("watermark")
    if isinstance(mark, str) and mark.strip():  # kie's waterMark: a visible mark on every output
        spec.setdefault("options", {})["watermark"] = mark.strip()[:64]
    return spec


def is_v8(version: str) -> bool:
    return version.split(".")[0] == "8"


def _quality(req: TaskRequest, spec: Spec) -> None:
    """EvoLink V8.x's top-level `quality`: "hd" renders the long side twice as large (and costs
    more, core/pricing.py); it exists on V8.x generation only and cannot be combined with draft."""
    quality = req.params.get("quality")
    if quality in (None, "standard"):
        return
    version = spec.get("version", "")
    if not is_v8(version) or req.operation is not Operation.IMAGINE:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"quality '{quality}' is only available for V8.x image generation (e.g. mj-v8.1)",
            400,
            param="quality",
        )
    draft = req.speed is Speed.DRAFT or bool(spec.get("prompt", {}).get("params", {}).get("draft"))
    if draft:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            "quality 'hd' cannot be combined with draft speed; use fast or turbo",
            400,
            param="quality",
        )
    spec["quality"] = "hd"


def _check_caps(spec: Spec, req: TaskRequest, caps: ModelCaps) -> None:
    """What the chosen model cannot do is refused here, before any charge, naming the model."""
    require_offered(caps, req.operation, spec)
    refs = spec.get("refs", {})
    for kind, param in (("sref", "--sref"), ("oref", "--oref")):
        if refs.get(kind) and not caps.references:
            raise TaskError(
                ErrorCode.NOT_SUPPORTED,
                f"{param} is not supported by the model '{caps.name}' ({caps.traits.label}): "
                "it has no reference-image conditioning configured",
                400,
                param="prompt",
            )
    if spec.get("prompt", {}).get("params", {}).get("tile") and not caps.traits.tile:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            f"--tile is not supported by the model '{caps.name}' ({caps.traits.label}): seamless "
            "tiling needs a convolutional denoiser",
            400,
            param="prompt",
        )
    if req.operation is Operation.REMOVE_BG and not caps.segmenter:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            f"Background removal needs a segmentation model, and the model '{caps.name}' has none configured",
            400,
        )


def _imagine(req: TaskRequest, parent: Task | None) -> Spec:
    parsed = req.parsed
    if parsed is None:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required", 400, param="prompt")
    if parsed.get("job_count", 1) > 1:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            f"This prompt expands into {parsed['job_count']} jobs (permutations or --repeat); "
            "this API creates one task per request, so send each prompt separately",
            400,
            param="prompt",
        )
    prompt = prompt_spec(parsed)
    extra = string_list(req.params.get("image_urls", []), "image_urls")
    return {"prompt": prompt, "options": {}, "refs": references(prompt, extra)}


MAX_MASK_AREAS = 64
MAX_MASK_POINTS = 2000


def validate_mask(mask: Any, *, required: bool) -> MaskSpec | None:
    """`{"areas": [{"width","height","points":[x1,y1,…]}]}`, `{"url": …}` or `{"base64": …}`."""
    if mask is None:
        if required:
            raise TaskError(ErrorCode.INVALID_PARAMETERS, "mask is required", 400, param="mask")
        return None
    if not isinstance(mask, dict):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "mask must be an object with areas or url", 400, param="mask"
        )
    if isinstance(mask.get("url"), str) and mask["url"]:
        return {"url": mask["url"]}
    if isinstance(mask.get("base64"), str) and mask["base64"]:
        data = mask["base64"]
        return {"url": data if data.startswith("data:") else f"data:image/png;base64,{data}"}
    areas = mask.get("areas")
    if not isinstance(areas, list) or not 1 <= len(areas) <= MAX_MASK_AREAS:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"mask needs a url or 1–{MAX_MASK_AREAS} areas", 400, param="mask"
        )
    clean = []
    for i, area in enumerate(areas):
        ok = isinstance(area, dict)
        w, h, pts = (area.get("width"), area.get("height"), area.get("points")) if ok else (None, None, None)
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (w, h))
        ok = ok and isinstance(pts, list) and 6 <= len(pts) <= MAX_MASK_POINTS and len(pts) % 2 == 0
        ok = ok and all(isinstance(p, int | float) and not isinstance(p, bool) for p in pts)  # type: ignore[union-attr]
        if not ok:
            raise TaskError(
                ErrorCode.INVALID_PARAMETERS,
                f"mask.areas[{i}] needs width and height > 0 and points [x1,y1,x2,y2,…] (3 points or more)",
                400,
                param="mask",
            )
        clean.append({"width": w, "height": h, "points": [float(p) for p in pts]})  # type: ignore[union-attr]
    return {"areas": clean}


def _box(value: Any, name: str, keys: tuple[str, ...], max_side: int = 4096) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"{name} is required ({', '.join(keys)})", 400, param=name
        )
    out = {}
    for k in keys:
        v = value.get(k)
        lo = 1 if k in ("width", "height") else -max_side
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= max_side:
            raise TaskError(
                ErrorCode.INVALID_PARAMETERS,
                f"{name}.{k} must be a number from {lo} to {max_side}",
                400,
                param=f"{name}.{k}",
            )
        out[k] = int(round(v))
    return out


def _upscale(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    factor = int(number(req, "factor", 1, 4, 2))
    if factor not in (1, *actions.UPSCALE_FACTORS):
        raise TaskError(ErrorCode.INVALID_PARAMETERS, "factor must be 1, 2 or 4", 400, param="factor")
    if factor > 1 and src.operation is Operation.UPSCALE and src.spec.get("options", {}).get("factor", 2) > 1:
        raise TaskError(
            ErrorCode.ALREADY_UPSCALED,
            f"Task {src.id} is already an upscaled image and cannot be upscaled again",
            403,
            param="task_id",
        )
    mode = choice(req, "mode", ("subtle", "creative"), "subtle")
    return {
        "prompt": PromptSpec(**src.spec.get("prompt", {})),
        "options": {"mode": mode, "factor": factor},
        "source": source_of(src, req.parent_index or 0),
    }


def _variation(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    strength = choice(req, "strength", ("subtle", "strong"), "subtle")
    return {
        "prompt": action_prompt(req, src, required=req.operation is Operation.REMIX),
        "options": {"strength": strength, "remix": req.parsed is not None},
        "source": source_of(src, req.parent_index or 0),
    }


def _zoom(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    scale = number(req, "scale", actions.ZOOM_MIN, actions.ZOOM_MAX, 1.5)
    return {
        "prompt": action_prompt(req, src, required=False),
        "options": {"scale": scale},
        "source": source_of(src, req.parent_index or 0),
    }


def _pan(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    direction = choice(req, "direction", actions.PAN_DIRECTIONS, "down")
    scale = number(req, "scale", actions.PAN_MIN, actions.PAN_MAX, 1.5)
    return {
        "prompt": action_prompt(req, src, required=False),
        "options": {"direction": direction, "scale": scale},
        "source": source_of(src, req.parent_index or 0),
    }


def _make_square(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    image = src.results[req.parent_index or 0]
    if image.width == image.height:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "The image is already square", 400, param="image_number"
        )
    return {
        "prompt": action_prompt(req, src, required=False),
        "options": {},
        "source": source_of(src, req.parent_index or 0),
    }


def _enhance(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    is_draft = src.speed is Speed.DRAFT or bool(src.spec.get("prompt", {}).get("params", {}).get("draft"))
    if not is_draft or src.operation not in (Operation.IMAGINE, Operation.REROLL):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"Task {src.id} was not generated in draft mode; enhance only accepts draft tasks",
            400,
            param="task_id",
        )
    prompt = PromptSpec(**src.spec.get("prompt", {}))
    prompt["params"] = {k: v for k, v in prompt.get("params", {}).items() if k != "draft"}
    return {
        "prompt": prompt,
        "options": {},
        "source": source_of(src, req.parent_index or 0),
    }


def _reroll(req: TaskRequest, parent: Task | None) -> Spec:
    if parent is None:
        raise TaskError(ErrorCode.INVALID_REQUEST, "task_id is required", 400, param="task_id")
    if parent.operation not in (Operation.IMAGINE, Operation.REROLL):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "Only an imagine task can be rerolled", 400, param="task_id"
        )
    require_finished(parent)
    return {"prompt": action_prompt(req, parent, required=False), "options": {"reroll_of": parent.id}}


def _inpaint(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    return {
        "prompt": action_prompt(req, src, required=False),
        "options": {"mask": validate_mask(req.params.get("mask"), required=True)},
        "source": source_of(src, req.parent_index or 0),
    }


def _canvas_options(req: TaskRequest, *, mask_required: bool) -> OptionsSpec:
    canvas = _box(req.params.get("canvas"), "canvas", ("width", "height"))
    img_pos = _box(req.params.get("img_pos"), "img_pos", ("width", "height", "x", "y"))
    x, y, w, h = img_pos["x"], img_pos["y"], img_pos["width"], img_pos["height"]
    if x >= canvas["width"] or y >= canvas["height"] or x + w <= 0 or y + h <= 0:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "img_pos places the image outside the canvas", 400, param="img_pos"
        )
    return {
        "canvas": canvas,
        "img_pos": img_pos,
        "mask": validate_mask(req.params.get("mask"), required=mask_required),
    }


def _edit(req: TaskRequest, parent: Task | None) -> Spec:
    src = completed(req, parent)
    return {
        "prompt": action_prompt(req, src, required=True),
        "options": _canvas_options(req, mask_required=False),
        "source": source_of(src, req.parent_index or 0),
    }


def _upload_paint(req: TaskRequest, parent: Task | None) -> Spec:
    if req.parsed is None:
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "prompt is required for this operation", 400, param="prompt"
        )
    return {
        "prompt": prompt_spec(req.parsed),
        "options": {"image_url": image_url(req), **_canvas_options(req, mask_required=True)},
    }


def _retexture(req: TaskRequest, parent: Task | None) -> Spec:
    if req.parsed is None:
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "prompt is required for this operation", 400, param="prompt"
        )
    return {"prompt": prompt_spec(req.parsed), "options": {"image_url": image_url(req)}}


def _remove_bg(req: TaskRequest, parent: Task | None) -> Spec:
    return {"prompt": {}, "options": {"image_url": image_url(req)}}


BLEND_DIMENSIONS = ("1:1", "2:3", "3:2")


def _blend(req: TaskRequest, parent: Task | None) -> Spec:
    urls = string_list(req.params.get("image_urls"), "image_urls")
    if not 2 <= len(urls) <= 5:
        raise TaskError(ErrorCode.INVALID_PARAMETERS, "blend takes 2 to 5 images", 400, param="image_urls")
    dims = choice(req, "dimensions", BLEND_DIMENSIONS, "1:1")
    prompt: PromptSpec = prompt_spec(req.parsed) if req.parsed else {"text": "", "params": {}}
    prompt["params"] = {**prompt.get("params", {}), "ar": dims}
    return {"prompt": prompt, "options": {"image_urls": urls, "dimensions": dims}}


def _describe(req: TaskRequest, parent: Task | None) -> Spec:
    return {"prompt": {}, "options": {"image_url": image_url(req)}}


def _shorten(req: TaskRequest, parent: Task | None) -> Spec:
    if req.parsed is None:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required", 400, param="prompt")
    prompt = prompt_spec(req.parsed)
    words.check_shortenable(prompt.get("text", ""))
    # the prompt as parsed (in English when it was translated): its links and parameters are
    # carried over to every shortened prompt
    written = (req.translation or {}).get("prompt") or req.prompt
    return {"prompt": prompt, "options": {"written": written}}


VALIDATORS = {
    Operation.INPAINT: _inpaint,
    Operation.EDIT: _edit,
    Operation.UPLOAD_PAINT: _upload_paint,
    Operation.RETEXTURE: _retexture,
    Operation.REMOVE_BG: _remove_bg,
    Operation.BLEND: _blend,
    Operation.IMAGINE: _imagine,
    Operation.UPSCALE: _upscale,
    Operation.VARIATION: _variation,
    Operation.REMIX: _variation,
    Operation.ZOOM: _zoom,
    Operation.PAN: _pan,
    Operation.MAKE_SQUARE: _make_square,
    Operation.ENHANCE: _enhance,
    Operation.REROLL: _reroll,
    Operation.DESCRIBE: _describe,
    Operation.SHORTEN: _shorten,
    **VIDEO_VALIDATORS,
}
