"""kie.ai video bodies → `TaskRequest`: `mj_video`/`mj_video_hd` on /generate, and
/generateVideoExtend (docs/api/kie.md, "Video"; the rules are core/video.py's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openmj.core.tasks import Operation, Speed, TaskRequest
from openmj.dialects.common import invalid, video_prompt_fields
from openmj.dialects.kie.requests import DIALECT, MAX_FILE_URLS, MAX_PROMPT, MODEL

#: kie's taskType → the clip class (seed 003: mj_video is SD, mj_video_hd HD)
RESOLUTIONS = {"mj_video": "sd", "mj_video_hd": "hd"}
EXTEND_TYPES = ("mj_video_extend_manual", "mj_video_extend_auto")
DEFAULT_BATCH = 1  # kie's videoBatchSize default
DEFAULT_MOTION = "high"  # kie's motion default


class VideoBody(BaseModel):
    """POST /api/v1/mj/generate with taskType mj_video or mj_video_hd."""

    model_config = ConfigDict(extra="ignore")
    taskType: Literal["mj_video", "mj_video_hd"]
    prompt: str = Field(default="", max_length=MAX_PROMPT)
    fileUrl: str | None = None
    fileUrls: list[str] | None = Field(default=None, max_length=MAX_FILE_URLS)
    motion: Any = None
    videoBatchSize: Any = None
    waterMark: str | None = None
    enableTranslation: bool | None = None
    callBackUrl: str | None = None


class ExtendBody(BaseModel):
    """POST /api/v1/mj/generateVideoExtend."""

    model_config = ConfigDict(extra="ignore")
    taskId: str = Field(min_length=1, max_length=128)
    index: int = Field(ge=0, le=3, strict=True)
    taskType: Literal["mj_video_extend_manual", "mj_video_extend_auto"]
    prompt: str = Field(default="", max_length=MAX_PROMPT)
    waterMark: str | None = None
    callBackUrl: str | None = None


def _start(body: VideoBody) -> str:
    urls = [u for u in (body.fileUrls or []) if u]
    if body.fileUrl:
        urls.append(body.fileUrl)
    if len(urls) != 1:
        found = "none" if not urls else f"{len(urls)}"
        raise invalid(
            f"{body.taskType} takes exactly one image in fileUrls or fileUrl (got {found})", "fileUrls"
        )
    return urls[0]


def build_video(body: VideoBody) -> TaskRequest:
    params: dict[str, Any] = {
        "image_url": _start(body),
        "resolution": RESOLUTIONS[body.taskType],
        "motion": body.motion if body.motion not in (None, "") else None,
        "batch": body.videoBatchSize,
    }
    parsed = video_prompt_fields(body.prompt)
    from_prompt = (parsed or {}).get("params", {})
    # the fields first, then what the prompt says, then kie's defaults
    for name, written, default in (("motion", "motion", DEFAULT_MOTION), ("batch", "bs", DEFAULT_BATCH)):
        if params[name] is None:
            params[name] = from_prompt.get(written, default)
    if body.waterMark:
        params["watermark"] = body.waterMark
    return TaskRequest(
        operation=Operation.VIDEO,
        model=MODEL,
        dialect=DIALECT,
        prompt=body.prompt,
        parsed=parsed,
        speed=Speed.FAST,  # kie: no speed for video; HD video is fast-only on Midjourney
        params=params,
        index_field="index",
    )


def build_extend(body: ExtendBody) -> TaskRequest:
    manual = body.taskType == "mj_video_extend_manual"
    if manual and not body.prompt.strip():
        raise invalid("prompt is required for mj_video_extend_manual", "prompt")
    params: dict[str, Any] = {"watermark": body.waterMark} if body.waterMark else {}
    return TaskRequest(
        operation=Operation.VIDEO_EXTEND,
        model=MODEL,
        dialect=DIALECT,
        prompt=body.prompt if manual else "",
        parsed=video_prompt_fields(body.prompt) if manual else None,
        speed=Speed.FAST,
        params=params,
        parent_id=body.taskId,
        parent_index=body.index,
        index_field="index",
    )
