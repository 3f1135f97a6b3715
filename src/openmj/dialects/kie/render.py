"""kie.ai's record (record-info `data`) and callback body (docs/api/kie.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from openmj.core.tasks import ErrorCode, Operation, Status, Task
from openmj.dialects.common import (
    Context,
    result_urls,
)
from openmj.dialects.kie.requests import DIALECT, IMAGE_TASK_TYPES, VIDEO_TASK_TYPES
from openmj.dialects.kie.video import EXTEND_TYPES

# --------------------------------------------------------------------------- responses

#: task types for tasks that were not created by /generate (kie names for its action tasks)
_TASK_TYPES = {
    Operation.UPSCALE: "mj_upscale",
    Operation.VARIATION: "mj_vary",
    Operation.REMIX: "mj_vary",
    Operation.VIDEO: "mj_video",
    Operation.VIDEO_EXTEND: "mj_video_extend_auto",
    Operation.VIDEO_UPSCALE: "mj_video_upscale",
}


def task_type(task: Task) -> str:
    sent = task.request.get("taskType") if task.dialect == DIALECT else None
    if isinstance(sent, str) and sent in (*IMAGE_TASK_TYPES, *VIDEO_TASK_TYPES, *EXTEND_TYPES):
        return sent
    if task.operation is Operation.IMAGINE:
        return "mj_img2img" if task.spec.get("refs", {}).get("image_prompts") else "mj_txt2img"
    return _TASK_TYPES.get(task.operation, f"mj_{task.operation.value}")


def param_json(task: Task) -> str:
    # the original request, compact with sorted keys as kie's own paramJson is
    return json.dumps(task.request, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: failed-task error codes (record-info errorCode): bad input 400, our fault 500, else 501
_TASK_ERROR_CODES = {
    ErrorCode.CONTENT_POLICY.value: 400,
    ErrorCode.INVALID_IMAGE_URL.value: 400,
    ErrorCode.IMAGE_TOO_LARGE.value: 400,
    ErrorCode.UNSUPPORTED_FORMAT.value: 400,
    ErrorCode.IMAGE_PROCESSING.value: 400,
    ErrorCode.INVALID_PROMPT.value: 400,
    ErrorCode.INVALID_PARAMETERS.value: 400,
    ErrorCode.NOT_FOUND.value: 400,
    ErrorCode.CANCELLED.value: 400,
    ErrorCode.SERVICE_ERROR.value: 500,
    ErrorCode.GENERATION_TIMEOUT.value: 500,
}


def success_flag(task: Task) -> int:
    """0 generating, 1 success, 2 failed, 3 created but generation failed (api-dialects.md §2.4, §6)."""
    if task.status is Status.COMPLETED:
        return 1
    if task.status is Status.FAILED and task.started_at is not None:
        return 3
    return 2 if task.status.terminal else 0


def render_record(ctx_: Context, task: Task) -> dict[str, Any]:
    flag = success_flag(task)
    urls = result_urls(ctx_.signer, task) if flag == 1 else []
    failed = flag in (2, 3)
    return {
        "taskId": task.id,
        "taskType": task_type(task),
        "paramJson": param_json(task),
        "finalPrompt": task.final_prompt,  # what the model read (the translation, when enabled)
        "completeTime": iso(task.finished_at) if task.status.terminal else None,
        "resultInfoJson": {"resultUrls": [{"resultUrl": u} for u in urls]} if flag == 1 else None,
        "successFlag": flag,
        "createTime": iso(task.created_at),
        "errorCode": _TASK_ERROR_CODES.get(task.error_code or "", 501) if failed else None,
        "errorMessage": (task.error_message or "Image generation failed") if failed else None,
        # kie's newer job API fields, read by some clients instead of successFlag
        "state": {0: "waiting", 1: "success"}.get(flag, "fail"),
        "resultJson": json.dumps({"resultUrls": urls}) if flag == 1 else None,
    }


def callback_payload(ctx: Context, task: Task, event: str) -> dict[str, Any]:
    """The callback body of api-dialects.md §2.5 (`resultUrls` is a plain string list here).

    kie calls back once, when the task ends; a non-terminal task renders as code 200 with no
    URLs and msg "waiting" (the deliverer should only queue terminal events for kie).
    """
    data = {"taskId": task.id, "promptJson": param_json(task), "resultUrls": []}
    if task.status is Status.COMPLETED:
        data["resultUrls"] = result_urls(ctx.signer, task)
        return {"code": 200, "msg": "success", "data": data}
    if task.status.terminal:
        return {"code": 500, "msg": task.error_message or "Image generation failed", "data": data}
    return {"code": 200, "msg": "waiting", "data": data}
