"""APIXO's statusTask `data` and its webhook body (docs/api/apixo.md)."""

from __future__ import annotations

import json
from typing import Any

from openmj.core.tasks import ErrorCode, Status, Task
from openmj.dialects.common import Context, result_urls, unix_ms

_STATES = {
    Status.PENDING: "pending",
    Status.MODAL: "pending",  # a midjourney-proxy task waiting for its modal input
    Status.PROCESSING: "processing",
    Status.COMPLETED: "success",
    Status.FAILED: "failed",
    Status.CANCELLED: "failed",
}
#: core task error code → APIXO failCode (api-dialects.md §3.5)
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


def render_status(ctx_: Context, task: Task) -> dict[str, Any]:
    """statusTask `data` (api-dialects.md §3.3): times in Unix ms; resultJson is a JSON string."""
    out: dict[str, Any] = {
        "taskId": task.id,
        "state": _STATES[task.status],
        "createTime": unix_ms(task.created_at),
    }
    if task.prompt:
        out["finalPrompt"] = task.final_prompt  # what the model read (the translation, when enabled)
    if task.status.terminal:
        done = task.finished_at or task.created_at
        out["completeTime"] = unix_ms(done)
    if task.status is Status.COMPLETED:
        out["resultJson"] = json.dumps({"resultUrls": result_urls(ctx_.signer, task)})
        out["costTime"] = out["completeTime"] - out["createTime"]
    elif task.status.terminal:
        out["failCode"] = FAIL_CODES.get(task.error_code or "", DEFAULT_FAIL_CODE)
        out["failMsg"] = task.error_message or "Generation failed"
    return out


def callback_payload(ctx: Context, task: Task, event: str) -> dict[str, Any]:
    """The webhook body (api-dialects.md §3.4): exactly the statusTask envelope."""
    return {"code": 200, "message": "success", "data": render_status(ctx, task)}
