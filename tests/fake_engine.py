"""An in-process stand-in for the model, after httpx's MockTransport: the real worker, queue,
store, media and dialects, with only the picture-making replaced. No torch is imported.

`FakeEngine` implements the engine protocol (openmj.engines.base): it answers every operation the
local engine supports with pictures of the sizes the local engine would produce (the same
`plan_generation` and canvas geometry), the same seeds, deterministic per seed and prompt. It
honours `JobControl` like the sampler does: a few steps, progress reported and `control.check()`
called at each one, so cancel, time-out and shutdown end it between steps.

For envelope, queue, credit, callback, limit and dialect-shape tests only: whatever a test says
about pixels or the model's behaviour belongs on the real tiny engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from openmj.core import actions as A
from openmj.core.families import family
from openmj.core.mapping import GenerationPlan
from openmj.core.tasks import Operation, Task
from openmj.engines.base import EngineJob, EngineResult, JobControl, JobStopped, ModelProfile, plan_for
from openmj.engines.local.presets import PRESETS, Preset
from openmj.media.masks import rasterize
from openmj.media.watermark import watermark

EDIT_MAX_SIDE_FACTOR = 1.25  # engines/local/editing.py: the editor's pixel budget, (1.25 × native)²


def profile_of(preset: Preset) -> ModelProfile:
    """The profile LocalEngine builds from a preset."""
    return ModelProfile(
        name=preset.name,
        family=preset.family,
        native_size=preset.native_size,
        steps=preset.steps,
        guidance=preset.guidance,
        licence=preset.licence,
        has_ip_adapter=preset.ip_adapter is not None,
        size_multiple=family(preset.family).size_multiple,
    )


@dataclass
class FakeRun:
    """One `run` call: how far it got and how it ended ("completed" or the JobStopped reason)."""

    task_id: str
    operation: Operation
    steps: int
    done: int = 0
    outcome: str | None = None
    ended: threading.Event = field(default_factory=threading.Event)


class FakeEngine:
    def __init__(
        self,
        preset: str | Preset = "tiny",
        *,
        steps: int = 4,
        step_seconds: float = 0.15,
        operations: frozenset[Operation] | None = None,
    ) -> None:
        """`steps` × `step_seconds` is how long a job takes: long enough by default (0.6 s) for
        the worker's 0.2 s heartbeat to see progress; a test of cancel or time-out makes it long."""
        self.preset = PRESETS[preset] if isinstance(preset, str) else preset
        self.profile = profile_of(self.preset)
        self.steps = steps
        self.step_seconds = step_seconds
        self.operations = SUPPORTED if operations is None else operations
        self.runs: list[FakeRun] = []
        self.loaded = False
        self._lock = threading.Lock()  # one job at a time, as LocalEngine does per device
        self._go = threading.Event()
        self._go.set()

    def load(self) -> None:
        self.loaded = True

    def supports(self, operation: Operation) -> bool:
        return operation in self.operations

    def run(self, job: EngineJob, control: JobControl) -> EngineResult:
        task = job.task
        if not self.supports(task.operation):
            raise ValueError(f"the fake engine does not run {task.operation.value}")
        record = FakeRun(task.id, task.operation, self.steps)
        self.runs.append(record)
        try:
            with self._lock:
                control.check()  # cancelled while it waited for the engine
                for i in range(self.steps):
                    while not self._go.wait(0.01):  # held: still stoppable
                        control.check()
                    time.sleep(self.step_seconds)
                    control.report((i + 1) / self.steps)
                    control.check()
                    record.done = i + 1
                result = RUNNERS[task.operation](self, job)
        except JobStopped as stopped:
            record.outcome = stopped.reason
            raise
        else:
            record.outcome = "completed"
        finally:
            record.ended.set()
        mark = task.spec.get("options", {}).get("watermark")
        if mark:  # engines/local/runners.py marks every output the same way
            result.images = [watermark(im, mark) for im in result.images]
        return result

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Jobs make no step while inside: a test can rely on a task being unfinished."""
        self._go.clear()
        try:
            yield
        finally:
            self._go.set()

    def run_for(self, task_id: str) -> FakeRun:
        """The last run of a task (raises if the engine never ran it)."""
        return [r for r in self.runs if r.task_id == task_id][-1]

    # ------------------------------------------------------------------ what the model would plan
    def plan(self, task: Task) -> GenerationPlan:
        """engines/local/runners.py's plan_for (the same function)."""
        return plan_for(self.profile, task)

    @property
    def model_names(self) -> list[str]:
        return [self.profile.name]


# ---------------------------------------------------------------------- pictures


def picture(size: tuple[int, int], seed: int | None, salt: str = "") -> Image.Image:
    """A smooth two-colour gradient with stripes, chosen by (seed, salt): cheap to make and to
    encode, different for every seed and prompt, the same every time for the same ones."""
    digest = hashlib.sha256(f"{seed}|{salt}".encode()).digest()
    w, h = size
    a, b = np.array(list(digest[:3]), float), np.array(list(digest[3:6]), float)
    x = np.linspace(0.0, 1.0, w)[None, :, None]
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    t = (x + y) / 2
    stripes = 0.5 + 0.5 * np.sin((x * (3 + digest[6] % 9) + y * (2 + digest[7] % 7)) * math.pi)
    arr = a * (1 - t) + b * t
    arr = arr * (0.8 + 0.2 * stripes)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def _vae(size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """diffusers' image processor floors an input image's sides to the VAE's multiple."""
    return size[0] - size[0] % multiple, size[1] - size[1] % multiple


def _snap(x: float, m: int = 8) -> int:
    return max(m, int(round(x / m)) * m)


def _fit(width: int, height: int, native: int) -> float:
    """engines/local/editing.py's fit_budget: scale (≤ 1) into the editor's pixel budget."""
    return min(1.0, math.sqrt((native * EDIT_MAX_SIDE_FACTOR) ** 2 / (width * height)))


def _grid(engine: FakeEngine, job: EngineJob, plan: GenerationPlan, size: tuple[int, int]) -> EngineResult:
    op = job.task.operation.value
    images = [picture(size, s, f"{op}|{p}") for s, p in zip(plan.seeds, _prompts(plan), strict=True)]
    return EngineResult(images=images, seeds=list(plan.seeds))


def _prompts(plan: GenerationPlan) -> list[str]:
    return plan.prompts if len(plan.prompts) == len(plan.seeds) else [plan.prompts[0]] * len(plan.seeds)


def _outpaint(engine: FakeEngine, job: EngineJob, plan: GenerationPlan, canvas: A.Canvas) -> EngineResult:
    """New content around the source, whose pixels are kept exactly (as actions.outpaint does)."""
    box = canvas.source
    placed = _source(job).resize((box.width, box.height), Image.Resampling.LANCZOS)
    result = _grid(engine, job, plan, (canvas.width, canvas.height))
    for im in result.images:
        im.paste(placed, (box.x, box.y))
    return result


def _source(job: EngineJob) -> Image.Image:
    return job.images["source"].convert("RGB")


def _imagine(engine: FakeEngine, job: EngineJob) -> EngineResult:
    plan = engine.plan(job.task)
    return _grid(engine, job, plan, (plan.width, plan.height))


def _upscale(engine: FakeEngine, job: EngineJob) -> EngineResult:
    opts, src = job.task.spec["options"], _source(job)
    seed = job.task.spec["source"].get("seed")
    factor = int(opts["factor"])
    if factor == 1:  # midjourney-proxy U1–U4: the image itself, cut from the grid
        return EngineResult(images=[src], seeds=[seed])
    plan = engine.plan(job.task)
    size = A.upscale_size(src.width, src.height, factor)
    return EngineResult(images=[picture(size, plan.seeds[0], "upscale")], seeds=plan.seeds[:1])


def _variation(engine: FakeEngine, job: EngineJob) -> EngineResult:
    return _grid(engine, job, engine.plan(job.task), _vae(_source(job).size))


def _zoom(engine: FakeEngine, job: EngineJob) -> EngineResult:
    src = _source(job)
    canvas = A.zoom_canvas(src.width, src.height, float(job.task.spec["options"]["scale"]))
    return _outpaint(engine, job, engine.plan(job.task), canvas)


def _pan(engine: FakeEngine, job: EngineJob) -> EngineResult:
    src, opts = _source(job), job.task.spec["options"]
    m = engine.profile.size_multiple
    canvas = A.pan_canvas(src.width, src.height, opts["direction"], float(opts["scale"]), m)
    return _outpaint(engine, job, engine.plan(job.task), canvas)


def _make_square(engine: FakeEngine, job: EngineJob) -> EngineResult:
    src = _source(job)
    canvas = A.square_canvas(src.width, src.height, engine.profile.size_multiple)
    return _outpaint(engine, job, engine.plan(job.task), canvas)


def _enhance(engine: FakeEngine, job: EngineJob) -> EngineResult:
    plan = engine.plan(job.task)
    seed = job.task.spec["source"].get("seed")
    seeds = [int(seed) if seed is not None else plan.seeds[0]]
    return EngineResult(images=[picture((plan.width, plan.height), seeds[0], "enhance")], seeds=seeds)


def _inpaint(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """New content inside the mask only (an empty mask: the source, unchanged)."""
    src, plan = _source(job), engine.plan(job.task)
    mask = rasterize(job.task.spec["options"]["mask"], src.size, job.images.get("mask"))
    result = _grid(engine, job, plan, src.size)
    result.images = [Image.composite(im, src, mask) for im in result.images]
    return result


def _edit(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """engines/local/editing.py's canvas: scaled into the pixel budget, the image placed on it."""
    image = job.images["source" if "source" in job.images else "upload"]
    opts = job.task.spec["options"]
    cw, ch = opts["canvas"]["width"], opts["canvas"]["height"]
    f = _fit(cw, ch, engine.profile.native_size)
    W, H = _snap(cw * f), _snap(ch * f)
    sx, sy = W / cw, H / ch
    pos = opts["img_pos"]
    x, y = int(round(pos["x"] * sx)), int(round(pos["y"] * sy))
    bw, bh = max(1, int(round(pos["width"] * sx))), max(1, int(round(pos["height"] * sy)))
    placed = image.convert("RGB").resize((bw, bh), Image.Resampling.LANCZOS)
    result = _grid(engine, job, engine.plan(job.task), (W, H))
    for im in result.images:
        im.paste(placed, (x, y))
    return result


def _retexture(engine: FakeEngine, job: EngineJob) -> EngineResult:
    upload = job.images["upload"]
    f = _fit(upload.width, upload.height, engine.profile.native_size)
    size = (_snap(upload.width * f), _snap(upload.height * f))
    return _grid(engine, job, engine.plan(job.task), size)


def _remove_bg(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """The cut-out at the upload's size, fully opaque (the fake segments nothing away)."""
    return EngineResult(images=[job.images["upload"].convert("RGBA")], seeds=[None])


FAKE_CLIP_FRAMES = 9  # a second at 8 fps: real lengths are the video model's (tests/test_video.py)
FAKE_EXTEND_FRAMES = 8


def _video(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """`batch` clips at the planned size, from the start image fading to a colour per clip."""
    from openmj.media.video import Clip

    video = job.task.spec["video"]
    size = (video["width"], video["height"])
    start = (job.images.get("start") or job.images["source"]).convert("RGB").resize(size)
    clips = []
    for n in range(video.get("batch", 1)):
        tint = Image.new("RGB", size, (60 * n, 200 - 40 * n, 90))
        frames = [Image.blend(start, tint, i / FAKE_CLIP_FRAMES) for i in range(FAKE_CLIP_FRAMES)]
        clips.append(Clip(frames, 8.0))
    return EngineResult(images=[c.frames[0] for c in clips], seeds=[None] * len(clips), videos=clips)


def _video_extend(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """The source clip, then frames fading from its last one."""
    from openmj.media.video import Clip

    source = job.extra["clip"]
    last = source.frames[-1]
    tint = Image.new("RGB", last.size, (250, 250, 250))
    more = [Image.blend(last, tint, (i + 1) / (FAKE_EXTEND_FRAMES + 1)) for i in range(FAKE_EXTEND_FRAMES)]
    clip = Clip([*source.frames, *more], source.fps)
    return EngineResult(images=[clip.frames[0]], seeds=[None], videos=[clip])


def _video_upscale(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """The source clip's frames at the HD size."""
    from openmj.media.video import Clip

    video = job.task.spec["video"]
    source = job.extra["clip"]
    frames = [f.convert("RGB").resize((video["width"], video["height"])) for f in source.frames]
    return EngineResult(images=[frames[0]], seeds=[None], videos=[Clip(frames, source.fps)])


def _shorten(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """Each word's effect is its length (the text encoder measures real ones)."""
    from openmj.core import words

    text = job.task.spec["prompt"].get("text", "")
    units = words.shorten_words(text)
    written = job.task.spec["options"].get("written") or job.task.prompt
    output = words.shorten_output(written, text, [float(len(u)) for u in units])
    return EngineResult(images=[], seeds=[], output=output)


def _describe(engine: FakeEngine, job: EngineJob) -> EngineResult:
    """Four prompts naming the picture's size and mean colour (the captioner's are model text)."""
    from openmj.core import words

    image = job.images["upload"].convert("RGB")
    r, g, b = (int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    captions = [f"picture {n} of {image.width} by {image.height}, colour {r} {g} {b}" for n in range(1, 5)]
    output = words.describe_output(captions, image.width, image.height)
    return EngineResult(images=[image], seeds=[job.task.seed], output=output)


# every operation engines/local/runners.py runs (not imported from there: it imports torch)
RUNNERS = {
    Operation.IMAGINE: _imagine,
    Operation.REROLL: _imagine,
    Operation.BLEND: _imagine,
    Operation.UPSCALE: _upscale,
    Operation.VARIATION: _variation,
    Operation.REMIX: _variation,
    Operation.ZOOM: _zoom,
    Operation.PAN: _pan,
    Operation.MAKE_SQUARE: _make_square,
    Operation.ENHANCE: _enhance,
    Operation.INPAINT: _inpaint,
    Operation.EDIT: _edit,
    Operation.UPLOAD_PAINT: _edit,
    Operation.RETEXTURE: _retexture,
    Operation.REMOVE_BG: _remove_bg,
    Operation.VIDEO: _video,
    Operation.VIDEO_EXTEND: _video_extend,
    Operation.VIDEO_UPSCALE: _video_upscale,
    Operation.DESCRIBE: _describe,
    Operation.SHORTEN: _shorten,
}
SUPPORTED = frozenset(RUNNERS)
