"""One function per operation, each turning a task into images with the loaded pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openmj.core.mapping import GenerationPlan, plan_generation
from openmj.core.tasks import Operation, Task
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local import actions
from openmj.engines.local.generate import run_plan

if TYPE_CHECKING:
    from openmj.engines.local.engine import LocalEngine

Runner = Callable[["LocalEngine", EngineJob, JobControl], EngineResult]


def plan_for(engine: LocalEngine, task: Task, *, n_images: int = 4) -> GenerationPlan:
    prompt: dict[str, Any] = task.spec.get("prompt", {})
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
    plan = plan_for(engine, job.task)
    images = run_plan(engine.variant("txt2img"), plan, control, engine.device)
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
}
SUPPORTED = frozenset(RUNNERS)


def run_operation(engine: LocalEngine, job: EngineJob, control: JobControl) -> EngineResult:
    return RUNNERS[job.task.operation](engine, job, control)
