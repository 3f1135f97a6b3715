"""EvoLink's task object (GET /v1/tasks/{id}, the create answer and the callback body)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from openmj.core.tasks import Status, Task
from openmj.core.video import VIDEO_OPERATIONS
from openmj.dialects.common import UNRENDERABLE, Context, media_url, result_urls
from openmj.dialects.evolink.errors import TASK_CODES
from openmj.media.signing import UrlSigner


class TaskObject(BaseModel):
    """The task object (documentation model; the fields present depend on the status)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: str
    model: str
    status: str
    progress: int
    created: int
    type: str
    task_info: dict[str, Any]
    usage: dict[str, Any]
    results: list[str] | None = None
    error: dict[str, Any] | None = None


class TaskList(BaseModel):
    object: str
    data: list[TaskObject]
    page: int
    page_size: int
    total: int
    has_more: bool


class TaskBatch(BaseModel):
    data: list[TaskObject]


def render_task(signer: UrlSigner, task: Task, estimate: int | None) -> dict[str, Any]:
    video = task.operation in VIDEO_OPERATIONS
    out: dict[str, Any] = {
        "created": int(task.created_at),
        "id": task.id,
        "model": task.model,
        "object": "video.generation.task" if video else "image.generation.task",
        "progress": task.progress if task.status is not Status.COMPLETED else 100,
        "status": task.status.value,
        "task_info": {"can_cancel": not task.status.terminal},
        "type": "video" if video else "image",
        "usage": {
            "billing_rule": "per_call",
            "credits_reserved": task.credits_reserved,
            "user_group": task.user_group,
        },
    }
    if task.prompt:
        out["final_prompt"] = task.final_prompt  # what the model read (translated, if it was)
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
            "code": TASK_CODES.get(task.error_code, task.error_code),
            "message": task.error_message or "",
            "type": "task_error",
        }
    return out


def placeholder(task: Task) -> dict[str, Any]:
    """A task whose stored data cannot be rendered, in a list."""
    error = {"code": "service_error", "message": UNRENDERABLE, "type": "task_error"}
    return {"id": task.id, "object": "image.generation.task", "status": "failed", "error": error}


def callback_payload(context: Context, task: Task, event: str) -> dict[str, Any]:
    """EvoLink posts the task detail itself, once it is final."""
    return render_task(context.signer, task, None)
