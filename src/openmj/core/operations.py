"""What each operation needs and accepts; turns a request into the task's stored `spec`.

The spec is fixed at submit time, so a task re-run after a crash does exactly the same work.

The contract for dialects (`TaskRequest` fields per operation; `parent_index` is 0-based):

| operation | parent | parsed prompt | params |
|---|---|---|---|
| IMAGINE | – | required | `image_urls`: extra image prompts (http(s) or `data:` URIs) put before the prompt's own |
| UPSCALE | task + index | – | `mode` subtle\|creative, `factor` 1 (separate from grid, no compute) \| 2 \| 4 |
| VARIATION | task + index | optional (remix) | `strength` subtle\|strong |
| REMIX | task + index | required | `strength` subtle\|strong |
| ZOOM | task + index | optional | `scale` 1.0–2.0 |
| PAN | task + index | optional | `direction` up\|down\|left\|right, `scale` 1.1–3.0 |
| MAKE_SQUARE | task + index | optional | – |
| ENHANCE | task + index (a draft task) | – | – |
| REROLL | task | optional | – |
| INPAINT | task + index | optional | `mask`: `{"areas": [{"width","height","points":[x,y,…]}]}` \| `{"url": …}` (white = repaint) |
| EDIT | task + index | required | `canvas` {width,height}, `img_pos` {width,height,x,y}, optional `mask` |
| UPLOAD_PAINT | – | required | `image_url`, `canvas`, `img_pos`, `mask` |
| RETEXTURE | – | required | `image_url` |
| REMOVE_BG | – | – | `image_url` |
| BLEND | – | optional | `image_urls` (2–5), `dimensions` "1:1" \| "2:3" \| "3:2" |
"""

from __future__ import annotations

from typing import Any

from openmj.core import actions
from openmj.core.tasks import ErrorCode, Operation, Speed, Status, Task, TaskError, TaskRequest

#: operations whose seed comes from the prompt's --seed; every other action draws new seeds
#: (Midjourney: "seeds influence only the initial grid"; Reroll keeps --seed)
PROMPT_SEEDED = frozenset({Operation.IMAGINE, Operation.REROLL})


def _prompt_spec(parsed: dict[str, Any]) -> dict[str, Any]:
    keep = ("text", "image_urls", "params", "segments", "effective_model", "warnings")
    return {k: parsed.get(k) for k in keep if k in parsed}


def validate_request(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    """Check the request against its operation's rules; return the spec the engine will read."""
    validator = VALIDATORS.get(req.operation)
    if validator is None:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED, f"Operation '{req.operation.value}' is not supported yet", 400
        )
    return validator(req, parent)


def _imagine(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
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
    return {"prompt": _prompt_spec(parsed), "options": dict(req.params)}


def require_completed(parent: Task | None, index: int | None, *, images: int | None = None) -> Task:
    """The source of an action: a completed task and a valid image index (0-based)."""
    if parent is None:
        raise TaskError(ErrorCode.INVALID_REQUEST, "task_id is required", 400, param="task_id")
    if parent.status is not Status.COMPLETED:
        raise TaskError(
            ErrorCode.TASK_NOT_READY,
            f"Task {parent.id} is {parent.status.value}; only a completed task can be used",
            400,
            param="task_id",
        )
    count = images if images is not None else len(parent.results)
    if index is None or not 0 <= index < count:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"image_number must be between 0 and {count - 1} for task {parent.id}",
            400,
            param="image_number",
        )
    return parent


def _source(parent: Task, index: int) -> dict[str, Any]:
    image = parent.results[index]
    return {
        "task_id": parent.id,
        "index": index,
        "name": image.name,
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "operation": parent.operation.value,
    }


def _action_prompt(req: TaskRequest, parent: Task, *, required: bool) -> dict[str, Any]:
    """A remix prompt when given, else the source's prompt carried over (as Midjourney does)."""
    if req.parsed is not None:
        if req.parsed.get("job_count", 1) > 1:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "A remix prompt must describe one job", 400, param="prompt"
            )
        return _prompt_spec(req.parsed)
    if required:
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "prompt is required for this operation", 400, param="prompt"
        )
    return dict(parent.spec.get("prompt", {}))


def _choice(req: TaskRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = req.params.get(name, default)
    if value not in allowed:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{name} must be one of {', '.join(allowed)} (got {value!r})",
            400,
            param=name,
        )
    return str(value)


def _number(req: TaskRequest, name: str, lo: float, hi: float, default: float) -> float:
    value = req.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{name} must be a number from {lo:g} to {hi:g} (got {value!r})",
            400,
            param=name,
        )
    return float(value)


def _upscale(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    factor = int(_number(req, "factor", 1, 4, 2))
    if factor not in (1, *actions.UPSCALE_FACTORS):
        raise TaskError(ErrorCode.INVALID_PARAMETERS, "factor must be 1, 2 or 4", 400, param="factor")
    if factor > 1 and src.operation is Operation.UPSCALE and src.spec.get("options", {}).get("factor", 2) > 1:
        raise TaskError(
            ErrorCode.ALREADY_UPSCALED,
            f"Task {src.id} is already an upscaled image and cannot be upscaled again",
            403,
            param="task_id",
        )
    mode = _choice(req, "mode", ("subtle", "creative"), "subtle")
    return {
        "prompt": dict(src.spec.get("prompt", {})),
        "options": {"mode": mode, "factor": factor},
        "source": _source(src, req.parent_index or 0),
    }


def _variation(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    strength = _choice(req, "strength", ("subtle", "strong"), "subtle")
    return {
        "prompt": _action_prompt(req, src, required=req.operation is Operation.REMIX),
        "options": {"strength": strength, "remix": req.parsed is not None},
        "source": _source(src, req.parent_index or 0),
    }


def _zoom(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    scale = _number(req, "scale", actions.ZOOM_MIN, actions.ZOOM_MAX, 1.5)
    return {
        "prompt": _action_prompt(req, src, required=False),
        "options": {"scale": scale},
        "source": _source(src, req.parent_index or 0),
    }


def _pan(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    direction = _choice(req, "direction", actions.PAN_DIRECTIONS, "down")
    scale = _number(req, "scale", actions.PAN_MIN, actions.PAN_MAX, 1.5)
    return {
        "prompt": _action_prompt(req, src, required=False),
        "options": {"direction": direction, "scale": scale},
        "source": _source(src, req.parent_index or 0),
    }


def _make_square(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    image = src.results[req.parent_index or 0]
    if image.width == image.height:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "The image is already square", 400, param="image_number"
        )
    return {
        "prompt": _action_prompt(req, src, required=False),
        "options": {},
        "source": _source(src, req.parent_index or 0),
    }


def _enhance(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    src = require_completed(parent, req.parent_index)
    is_draft = src.speed is Speed.DRAFT or bool(src.spec.get("prompt", {}).get("params", {}).get("draft"))
    if not is_draft or src.operation not in (Operation.IMAGINE, Operation.REROLL):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"Task {src.id} was not generated in draft mode; enhance only accepts draft tasks",
            400,
            param="task_id",
        )
    prompt = dict(src.spec.get("prompt", {}))
    params = {k: v for k, v in prompt.get("params", {}).items() if k != "draft"}
    return {
        "prompt": prompt | {"params": params},
        "options": {},
        "source": _source(src, req.parent_index or 0),
    }


def _reroll(req: TaskRequest, parent: Task | None) -> dict[str, Any]:
    if parent is None:
        raise TaskError(ErrorCode.INVALID_REQUEST, "task_id is required", 400, param="task_id")
    if parent.operation not in (Operation.IMAGINE, Operation.REROLL):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "Only an imagine task can be rerolled", 400, param="task_id"
        )
    if parent.status is not Status.COMPLETED:
        raise TaskError(
            ErrorCode.TASK_NOT_READY,
            f"Task {parent.id} is {parent.status.value}; only a completed task can be used",
            400,
            param="task_id",
        )
    return {"prompt": _action_prompt(req, parent, required=False), "options": {"reroll_of": parent.id}}


VALIDATORS = {
    Operation.IMAGINE: _imagine,
    Operation.UPSCALE: _upscale,
    Operation.VARIATION: _variation,
    Operation.REMIX: _variation,
    Operation.ZOOM: _zoom,
    Operation.PAN: _pan,
    Operation.MAKE_SQUARE: _make_square,
    Operation.ENHANCE: _enhance,
    Operation.REROLL: _reroll,
}
