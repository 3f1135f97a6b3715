"""Video runners: animate, extend and (virtual) upscale on a Wan image-to-video pipeline.

What each Midjourney video parameter does to the model (docs/video.md):
- the start image is the pipeline's `image` (the first frame), fitted to the clip's aspect;
- `--end` and `--loop` are its `last_image` on a first-last-frame model (a loop's end frame is its
  start frame), then the closing frames cross-fade into that exact image (`END_FADE_SECONDS`);
- motion low/high are words added to the prompt and the negative prompt (`MOTION_WORDS`);
- extend continues from the clip's last frame and appends the new frames to the clip.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from openmj.core.spec import VideoSpec
from openmj.core.tasks import Task
from openmj.core.video import SIZE_MULTIPLE
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local.generate import generators, step_callback
from openmj.engines.local.pipelines import Pipelines
from openmj.media.video import Clip, resample

#: (added to the prompt, added to the negative prompt) per motion: low keeps the camera still and
#: the subject calm (Midjourney: "ambient scenes"), high asks for movement and refuses stillness
MOTION_WORDS = {
    "low": ("subtle slow motion, steady camera", "fast motion, shaking camera, rapid cuts"),
    "high": ("dynamic motion, energetic movement, moving camera", "static, still image, frozen frame"),
}
#: Wan's own negative prompt, shortened (its model card): what a clip should never look like
NEGATIVE = "blurry details, worst quality, low quality, jpeg artifacts, deformed, disfigured"
#: the end frame is conditioning, not a constraint: the sampler lands near it; half a second of
#: cross-fade makes the last frame exactly the requested one, so a loop has no visible jump
END_FADE_SECONDS = 0.5


def frame_count(seconds: float, fps: float) -> int:
    """seconds × fps frames after the first, a multiple of 4 (Wan's VAE packs 4 frames a latent)."""
    return max(1, round(seconds * fps / 4)) * 4 + 1


def _side(value: float) -> int:
    return max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image centre-cropped to the aspect of `size` and resized to it."""
    w, h = image.size
    target = size[0] / size[1]
    if w / h > target:
        crop = round(h * target)
        image = image.crop(((w - crop) // 2, 0, (w - crop) // 2 + crop, h))
    elif w / h < target:
        crop = round(w / target)
        image = image.crop((0, (h - crop) // 2, w, (h - crop) // 2 + crop))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def pin_ends(
    frames: list[Image.Image], start: Image.Image | None, end: Image.Image | None, fade: int
) -> None:
    """The first frame is the start image; the last `fade` frames blend into the end image."""
    if start is not None:
        frames[0] = start
    if end is None or len(frames) < 2:
        return
    fade = max(1, min(fade, len(frames) - 1))
    for k in range(fade):
        i = len(frames) - fade + k
        alpha = (k + 1) / fade
        frames[i] = Image.blend(frames[i].convert("RGB"), end, alpha)


def _prompts(task: Task, video: VideoSpec, batch: int) -> tuple[list[str], list[str]]:
    text = str(task.spec.get("prompt", {}).get("text") or "").strip()
    more, less = MOTION_WORDS[video.get("motion", "low")]
    prompt = f"{text}, {more}" if text else more
    return [prompt] * batch, [f"{NEGATIVE}, {less}"] * batch


def _sample(
    pipes: Pipelines,
    task: Task,
    start: Image.Image,
    end: Image.Image | None,
    frames: int,
    batch: int,
    control: JobControl,
) -> list[list[Image.Image]]:
    """`batch` clips of `frames` frames at the output size, starting on `start`."""
    vp = pipes.video_preset
    assert vp is not None
    video = task.spec["video"]
    size = (video["width"], video["height"])
    render = (_side(size[0] * vp.render_scale), _side(size[1] * vp.render_scale))
    pipe = pipes.video()
    prompts, negatives = _prompts(task, video, batch)
    kwargs: dict[str, Any] = {
        "image": fit(start, render),
        # one prompt per clip: diffusers' num_videos_per_prompt mis-sizes the image context
        "prompt": prompts,
        "negative_prompt": negatives,
        "width": render[0],
        "height": render[1],
        "num_frames": frames,
        "num_inference_steps": vp.steps,
        "guidance_scale": vp.guidance,
        "generator": generators([task.seed + i for i in range(batch)]),
        "output_type": "pil",
        "callback_on_step_end": step_callback(control, vp.steps, None),
    }
    if end is not None and vp.end_frame:
        kwargs["last_image"] = fit(end, render)
    with torch.inference_mode():
        out = pipe(**kwargs).frames
    control.check()  # cancelled or timed out during the loop: no half-made clip
    return [resample([f.convert("RGB") for f in clip], size) for clip in out]


def _result(task: Task, clips: list[list[Image.Image]], fps: float) -> EngineResult:
    return EngineResult(
        images=[c[len(c) // 2] for c in clips],
        seeds=[task.seed + i for i in range(len(clips))],
        videos=[Clip(frames=c, fps=fps) for c in clips],
    )


def animate(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    vp = pipes.video_preset
    assert vp is not None
    task, video = job.task, job.task.spec["video"]
    size = (video["width"], video["height"])
    start = fit(job.images.get("start") or job.images["source"], size)
    end = fit(job.images["end"], size) if "end" in job.images else (start if video.get("loop") else None)
    frames = frame_count(video.get("seconds", 5.0), vp.fps)
    clips = _sample(pipes, task, start, end, frames, int(video.get("batch", 1)), control)
    for clip in clips:
        pin_ends(clip, start, end, round(END_FADE_SECONDS * vp.fps))
    return _result(task, clips, vp.fps)


def extend(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    """The clip, then about 4 s more that start from its last frame."""
    vp = pipes.video_preset
    assert vp is not None
    task, video = job.task, job.task.spec["video"]
    source: Clip = job.extra["clip"]
    size = (video["width"], video["height"])
    last = fit(source.frames[-1], size)
    frames = frame_count(video.get("seconds", 4.0), source.fps)
    new = _sample(pipes, task, last, None, frames, 1, control)[0]
    joined = resample(source.frames, size) + new[1:]  # the new clip's first frame is the old last one
    return _result(task, [joined], source.fps)


def upscale(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    """Midjourney's virtual upscale: the same frames at the HD size, written at a finer quality."""
    source: Clip = job.extra["clip"]
    video = job.task.spec["video"]
    size = (video["width"], video["height"])
    frames: list[Image.Image] = []
    for i, frame in enumerate(source.frames):
        frames.append(frame.resize(size, Image.Resampling.LANCZOS))
        control.report((i + 1) / len(source.frames))
        control.check()
    return _result(job.task, [frames], source.fps)
