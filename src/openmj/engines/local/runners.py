"""One function per operation, each turning a task into images with the loaded pipeline."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from openmj.core import references as R
from openmj.core.families import family as family_traits
from openmj.core.mapping import GenerationPlan
from openmj.core.tasks import Operation, Task
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.base import plan_for as engine_plan
from openmj.engines.local import adapters, editing, redraw, video, words
from openmj.engines.local.generate import run_plan
from openmj.engines.local.pipelines import Pipelines
from openmj.media.watermark import watermark

Runner = Callable[[Pipelines, EngineJob, JobControl], EngineResult]


def plan_for(pipes: Pipelines, task: Task, *, n_images: int | None = None) -> GenerationPlan:
    return engine_plan(pipes.profile, task, n_images=n_images)


def imagine(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    """Text (and image prompts, --sref, --oref) to a grid; also Reroll and Blend."""
    plan = plan_for(pipes, job.task)
    family = pipes.family
    if not adapters.has_references(job.extra):
        images = run_plan(pipes.variant("txt2img"), plan, control, pipes.device, family=family)
    elif family_traits(family).references == "native":
        refs = adapters.reference_images(job.extra)
        images = run_plan(pipes.pipe, plan, control, pipes.device, family=family, image=refs)
    elif pipes.preset.ip_adapter is not None:
        with adapters.adapter(pipes):
            kwargs = adapters.adapter_kwargs(pipes, job.task.spec.get("refs", {}), job.extra)
            images = run_plan(pipes.pipe, plan, control, pipes.device, family=family, **kwargs)
    else:  # no adapter: the image prompts (blended) are the img2img start; --iw sets how much they count
        sources: list[Image.Image] = job.extra.get("image_prompts") or job.extra.get("blend") or []
        start = adapters.blended(sources, (plan.width, plan.height))
        strength = R.image_prompt_strength(job.task.spec.get("refs", {}).get("iw"))
        images = redraw.img2img(pipes, plan, start, strength, control, len(plan.seeds))
    return EngineResult(images=images, seeds=list(plan.seeds))


def _with_plan(action: Callable[..., EngineResult]) -> Runner:
    def run(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
        return action(pipes, job, control, plan_for(pipes, job.task))

    return run


RUNNERS: dict[Operation, Runner] = {
    Operation.IMAGINE: imagine,
    Operation.REROLL: imagine,
    Operation.UPSCALE: _with_plan(redraw.upscale),
    Operation.VARIATION: _with_plan(redraw.variation),
    Operation.REMIX: _with_plan(redraw.variation),
    Operation.ZOOM: _with_plan(redraw.zoom),
    Operation.PAN: _with_plan(redraw.pan),
    Operation.MAKE_SQUARE: _with_plan(redraw.make_square),
    Operation.ENHANCE: _with_plan(redraw.enhance),
    Operation.BLEND: imagine,
    Operation.INPAINT: _with_plan(editing.inpaint),
    Operation.EDIT: _with_plan(editing.edit),
    Operation.UPLOAD_PAINT: _with_plan(editing.edit),
    Operation.RETEXTURE: _with_plan(editing.retexture),
    Operation.REMOVE_BG: _with_plan(editing.remove_bg),
    Operation.VIDEO: video.animate,
    Operation.VIDEO_EXTEND: video.extend,
    Operation.VIDEO_UPSCALE: video.upscale,
    Operation.DESCRIBE: words.describe,
    Operation.SHORTEN: words.shorten,
}


def run_operation(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    result = RUNNERS[job.task.operation](pipes, job, control)
    mark = job.task.spec.get("options", {}).get("watermark")
    if mark:
        result.images = [watermark(im, mark) for im in result.images]
        for clip in result.videos or []:
            clip.frames[:] = [watermark(f, mark) for f in clip.frames]
    return result
