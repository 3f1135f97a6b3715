"""Checks every operation's validator shares: the source task and index, prompts, choices, numbers.

Raise `TaskError` with the client's field name; `core/operations.py` and `core/video.py` use them.
"""

from __future__ import annotations

from typing import Any, cast

from openmj.core.spec import PromptSpec, SourceSpec
from openmj.core.tasks import ErrorCode, Status, Task, TaskError, TaskRequest


def prompt_spec(parsed: dict[str, Any]) -> PromptSpec:
    keep = ("text", "image_urls", "params", "segments", "effective_model", "warnings")
    return cast(PromptSpec, {k: parsed.get(k) for k in keep if k in parsed})


def string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TaskError(ErrorCode.INVALID_PARAMETERS, f"{name} must be a list of URLs", 400, param=name)
    return list(value)


def require_finished(parent: Task | None) -> Task:
    """The source task exists and is completed."""
    if parent is None:
        raise TaskError(ErrorCode.INVALID_REQUEST, "task_id is required", 400, param="task_id")
    if parent.status is not Status.COMPLETED:
        raise TaskError(
            ErrorCode.TASK_NOT_READY,
            f"Task {parent.id} is {parent.status.value}; only a completed task can be used",
            400,
            param="task_id",
        )
    return parent


def require_completed(
    parent: Task | None,
    index: int | None,
    *,
    images: int | None = None,
    field: str = "image_number",
    base: int = 0,
) -> Task:
    """The source of an action: a completed task and a valid image index (0-based). `field` and
    `base` are how the client's API names and numbers the index, for the message."""
    parent = require_finished(parent)
    count = images if images is not None else len(parent.results)
    if index is None or not 0 <= index < count:
        shown = "" if index is None else f" (got {index + base})"
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{field} must be between {base} and {count - 1 + base} for task {parent.id}{shown}",
            400,
            param=field,
        )
    return parent


def completed(req: TaskRequest, parent: Task | None) -> Task:
    return require_completed(parent, req.parent_index, field=req.index_field, base=req.index_base)


def source_of(parent: Task, index: int) -> SourceSpec:
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


def action_prompt(req: TaskRequest, parent: Task, *, required: bool) -> PromptSpec:
    """A remix prompt when given, else the source's prompt carried over (as Midjourney does)."""
    if req.parsed is not None:
        if req.parsed.get("job_count", 1) > 1:
            raise TaskError(
                ErrorCode.INVALID_PROMPT, "A remix prompt must describe one job", 400, param="prompt"
            )
        return prompt_spec(req.parsed)
    if required:
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "prompt is required for this operation", 400, param="prompt"
        )
    return PromptSpec(**parent.spec.get("prompt", {}))


def choice(req: TaskRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = req.params.get(name, default)
    if value not in allowed:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{name} must be one of {', '.join(allowed)} (got {value!r})",
            400,
            param=name,
        )
    return str(value)


def number(req: TaskRequest, name: str, lo: float, hi: float, default: float) -> float:
    value = req.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"{name} must be a number from {lo:g} to {hi:g} (got {value!r})",
            400,
            param=name,
        )
    return float(value)


def image_url(req: TaskRequest) -> str:
    url = req.params.get("image_url")
    if not isinstance(url, str) or not url:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, "one image URL is required (image_urls)", 400, param="image_urls"
        )
    return url
