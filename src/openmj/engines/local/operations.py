"""One function per operation, each turning a task into images with the loaded pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

from openmj.core import references as R
from openmj.core.mapping import GenerationPlan, plan_generation
from openmj.core.tasks import Operation, Task
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local import actions, editing, references
from openmj.engines.local.generate import run_plan
from openmj.media.watermark import watermark

if TYPE_CHECKING:
    from openmj.engines.local.engine import LocalEngine

Runner = Callable[["LocalEngine", EngineJob, JobControl], EngineResult]


def plan_for(engine: LocalEngine, task: Task, *, n_images: int = 4) -> GenerationPlan:
    prompt = task.spec.get("prompt", {})
    params = dict(prompt.get("params", {}))
    if task.operation not in (Operation.IMAGINE, Operation.REROLL):
        params.pop("draft", None)  # actions re-render at full quality (Midjourney: Vary/Enhance of a draft)
    return plan_generation(
        text=prompt.get("text", ""),
        params=params,
        segments=prompt.get("segments"),
        seed=task.seed,
        speed=task.speed,
        native_side=engine.profile.native_size,
        size_multiple=engine.profile.size_multiple,
        steps=engine.profile.steps,
        guidance=engine.profile.guidance,
        n_images=n_images,
    )


def imagine(engine: LocalEngine, job: EngineJob, control: JobControl) -> EngineResult:
    """Text (and image prompts, --sref, --oref) to a grid; also Reroll and Blend."""
    plan = plan_for(engine, job.task)
    if not references.has_references(job.extra):
        images = run_plan(engine.variant("txt2img"), plan, control, engine.device)
    elif engine.preset.ip_adapter is not None:
        with references.adapter(engine):
            kwargs = references.adapter_kwargs(engine, job.task.spec.get("refs", {}), job.extra)
            images = run_plan(engine.pipe, plan, control, engine.device, **kwargs)
    else:  # no adapter: the image prompts (blended) are the img2img start; --iw sets how much they count
        sources: list[Image.Image] = job.extra.get("image_prompts") or job.extra.get("blend") or []
        start = references.blended(sources, (plan.width, plan.height))
        strength = R.image_prompt_strength(job.task.spec.get("refs", {}).get("iw"))
        images = actions.img2img(engine, plan, start, strength, control, len(plan.seeds))
    return EngineResult(images=images, seeds=list(plan.seeds), meta={"steps": plan.steps})


def _with_plan(action: Callable[..., EngineResult]) -> Runner:
    def run(engine: LocalEngine, job: EngineJob, control: JobControl) -> EngineResult:
        return action(engine, job, control, plan_for(engine, job.task))

    return run


RUNNERS: dict[Operation, Runner] = {
    Operation.IMAGINE: imagine,
    Operation.REROLL: imagine,
    Operation.UPSCALE: _with_plan(actions.upscale),
    Operation.VARIATION: _with_plan(actions.variation),
    Operation.REMIX: _with_plan(actions.variation),
    Operation.ZOOM: _with_plan(actions.zoom),
    Operation.PAN: _with_plan(actions.pan),
    Operation.MAKE_SQUARE: _with_plan(actions.make_square),
    Operation.ENHANCE: _with_plan(actions.enhance),
    Operation.BLEND: imagine,
    Operation.INPAINT: _with_plan(editing.inpaint),
    Operation.EDIT: _with_plan(editing.edit),
    Operation.UPLOAD_PAINT: _with_plan(editing.edit),
    Operation.RETEXTURE: _with_plan(editing.retexture),
    Operation.REMOVE_BG: _with_plan(editing.remove_bg),
}
SUPPORTED = frozenset(RUNNERS)


def run_operation(engine: LocalEngine, job: EngineJob, control: JobControl) -> EngineResult:
    result = RUNNERS[job.task.operation](engine, job, control)
    mark = job.task.spec.get("options", {}).get("watermark")
    if mark:
        result.images = [watermark(im, mark) for im in result.images]
    return result
