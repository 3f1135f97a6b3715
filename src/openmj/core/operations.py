"""What each operation needs and accepts; turns a request into the task's stored `spec`.

The spec is fixed at submit time, so a task re-run after a crash does exactly the same work.
"""

from __future__ import annotations

from typing import Any

from openmj.core.tasks import ErrorCode, Operation, Status, Task, TaskError, TaskRequest


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


VALIDATORS = {
    Operation.IMAGINE: _imagine,
}
