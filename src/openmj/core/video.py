"""Video operations: animate a start image, extend a clip, upscale a clip (docs/video.md).

Midjourney's V1 video model, as docs/reference/mj-prompt.md §14 describes it: a start image and an
optional motion prompt become 5-second clips (4 per job unless `--bs` says 1 or 2), low or high
motion, an optional end frame or a loop (the end frame is the start frame, so `--loop` and `--end`
exclude each other); each Extend adds about 4 s, up to 21 s; SD is the 480p class, HD the 720p
class, both sized from the start image's aspect ratio.

| operation | parent | params |
|---|---|---|
| VIDEO | – or task + index | `image_url` (no parent), `end_url`, `loop`, `motion`, `batch`, `resolution` |
| VIDEO_EXTEND | video task + clip index | optional prompt (manual), `motion` |
| VIDEO_UPSCALE | SD video task + clip index | – |
"""

from __future__ import annotations

import math
from typing import Any

from openmj.core.checks import choice, prompt_spec, require_completed, source_of
from openmj.core.spec import PromptSpec, Spec, VideoSpec
from openmj.core.tasks import ErrorCode, Operation, Task, TaskError, TaskRequest

CLIP_SECONDS = 5.0
EXTEND_SECONDS = 4.0
MAX_SECONDS = 21.0  # 5 s + four extends
MOTIONS = ("low", "high")
BATCH_SIZES = (1, 2, 4)
DEFAULT_BATCH = 4  # Midjourney's default; kie's videoBatchSize defaults to 1 (its dialect says so)
RESOLUTIONS = ("sd", "hd")
#: the side of the square frame of each class; other aspect ratios keep its area. Midjourney's own
#: sizes (mj-prompt.md §5): SD 1:1 624×624, 2:3 512×768; HD 1:1 960×960, 2:3 784×1168
SQUARE_SIDE = {"sd": 624, "hd": 960}
SIZE_MULTIPLE = 16  # video models patch latents 2×2 after an 8× VAE
VIDEO_OPERATIONS = frozenset({Operation.VIDEO, Operation.VIDEO_EXTEND, Operation.VIDEO_UPSCALE})


def video_size(width: int, height: int, resolution: str) -> tuple[int, int]:
    """The frame size for a start image of `width`×`height`: its aspect, the class's area."""
    area = SQUARE_SIDE[resolution] ** 2
    w = math.sqrt(area * width / height)
    h = math.sqrt(area * height / width)
    return _multiple(w), _multiple(h)


def _multiple(side: float) -> int:
    return max(SIZE_MULTIPLE, round(side / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _invalid(message: str, param: str) -> TaskError:
    return TaskError(ErrorCode.INVALID_PARAMETERS, message, 400, param=param)


def _batch(value: Any) -> int:
    if isinstance(value, bool) or value not in BATCH_SIZES:
        raise _invalid(f"batch size must be 1, 2 or 4 (got {value!r})", "batch")
    return int(value)


def _motion(value: Any, default: str) -> str:
    motion = default if value is None or value == "" else value
    motion = motion.strip().lower() if isinstance(motion, str) else motion
    if motion not in MOTIONS:
        raise _invalid(f"motion must be low or high (got {value!r})", "motion")
    return str(motion)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false (got {value!r})", name)
    return value


def _url(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be an image URL or base64 data", name)
    return value


def _motion_prompt(req: TaskRequest) -> PromptSpec:
    """The motion prompt: the text of the prompt, its video parameters already read."""
    if req.parsed is None:
        return {"text": "", "params": {}}
    spec = prompt_spec(req.parsed)
    spec["image_urls"] = []  # the start image is the input, not an image prompt
    return spec


def _video_params(req: TaskRequest) -> dict[str, Any]:
    """Dialect fields first, then what the prompt's own `--motion --loop --end --bs` said."""
    from_prompt = (req.parsed or {}).get("params", {})
    out = {
        "motion": from_prompt.get("motion"),
        "loop": from_prompt.get("loop"),
        "end_url": from_prompt.get("end"),
        "batch": from_prompt.get("bs"),
    }
    out |= {k: v for k, v in req.params.items() if v is not None}
    return out


def _animate(req: TaskRequest, parent: Task | None) -> Spec:
    p = _video_params(req)
    motion = _motion(p.get("motion"), "low")
    loop = _flag(p.get("loop") or False, "loop")
    end_url = _url(p.get("end_url"), "end_url")
    if loop and end_url:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            "Invalid parameter: `--end` is not compatible with `--loop`",
            400,
            param="loop",
        )
    resolution = choice(req, "resolution", RESOLUTIONS, "sd")
    video: VideoSpec = {
        "motion": motion,
        "loop": loop,
        "batch": _batch(DEFAULT_BATCH if p.get("batch") is None else p["batch"]),
        "resolution": resolution,
        "seconds": CLIP_SECONDS,
    }
    if end_url:
        video["end_url"] = end_url
    spec: Spec = {"prompt": _motion_prompt(req), "options": {}, "video": video}
    if parent is not None:  # Animate on a finished image
        src = require_completed(parent, req.parent_index, field=req.index_field, base=req.index_base)
        if src.operation in VIDEO_OPERATIONS:
            raise _invalid(f"Task {src.id} is a video; animate takes an image (use extend)", "task_id")
        spec["source"] = source_of(src, req.parent_index or 0)
        video["width"], video["height"] = video_size(
            spec["source"]["width"], spec["source"]["height"], resolution
        )
        return spec
    start = _url(p.get("image_url"), "image_url")
    if start is None:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            "Invalid prompt: --video needs a starting image URL",
            400,
            param="image_url",
        )
    video["start_url"] = start  # its size is read when the service fetches it (set_size)
    return spec


def set_size(spec: Spec, start_width: int, start_height: int) -> None:
    """Fix the frame size of an animate task from its fetched start image."""
    video = spec["video"]
    video["width"], video["height"] = video_size(start_width, start_height, video["resolution"])


def _source_clip(req: TaskRequest, parent: Task | None) -> tuple[Task, int]:
    src = require_completed(parent, req.parent_index, field=req.index_field, base=req.index_base)
    if src.operation not in VIDEO_OPERATIONS:
        raise _invalid(
            f"Task {src.id} is not a video task; only a video can be extended or upscaled", "task_id"
        )
    return src, req.parent_index or 0


def _extend(req: TaskRequest, parent: Task | None) -> Spec:
    src, index = _source_clip(req, parent)
    clip = src.results[index]
    if clip.seconds + EXTEND_SECONDS > MAX_SECONDS + 0.5:  # half a second: the 4k+1 frame rounding
        # (core/followups.py offers Extend by the same rule)
        raise _invalid(
            f"This clip is {clip.seconds:.0f} s long; a video can be extended up to {MAX_SECONDS:.0f} s",
            "index",
        )
    before: dict[str, Any] = dict(src.spec.get("video", {}))
    motion = _motion(_video_params(req).get("motion"), before.get("motion") or "low")
    manual = req.parsed is not None and bool((req.parsed.get("text") or "").strip())
    prompt = _motion_prompt(req) if manual else PromptSpec(**src.spec.get("prompt", {}))
    video: VideoSpec = {
        "motion": motion,
        "batch": 1,
        "resolution": before.get("resolution", "sd"),
        "width": clip.width,
        "height": clip.height,
        "seconds": EXTEND_SECONDS,
        "manual": manual,
    }
    return {"prompt": prompt, "options": {}, "video": video, "source": source_of(src, index)}


def _upscale(req: TaskRequest, parent: Task | None) -> Spec:
    src, index = _source_clip(req, parent)
    before = src.spec.get("video", {})
    if before.get("resolution") == "hd":
        raise TaskError(
            ErrorCode.ALREADY_UPSCALED, f"Task {src.id} is already an HD video", 403, param="task_id"
        )
    clip = src.results[index]
    width, height = video_size(clip.width, clip.height, "hd")
    video: VideoSpec = {
        "batch": 1,
        "resolution": "hd",
        "width": width,
        "height": height,
        "seconds": clip.seconds,
    }
    return {
        "prompt": PromptSpec(**src.spec.get("prompt", {})),
        "options": {},
        "video": video,
        "source": source_of(src, index),
    }


def clips(spec: Spec) -> int:
    return int(spec.get("video", {}).get("batch", 1))


def resolution(spec: Spec) -> str:
    return str(spec.get("video", {}).get("resolution", "sd"))


VIDEO_VALIDATORS = {
    Operation.VIDEO: _animate,
    Operation.VIDEO_EXTEND: _extend,
    Operation.VIDEO_UPSCALE: _upscale,
}
