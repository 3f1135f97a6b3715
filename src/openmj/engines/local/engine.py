"""The local diffusers engine: one loaded model (`Pipelines`) and one job at a time per device.

Jobs run one at a time (the lock): two jobs on one GPU would only slow each other.
"""

from __future__ import annotations

import threading
from pathlib import Path

from openmj.core.tasks import Operation
from openmj.engines.base import EngineJob, EngineResult, JobControl, ModelProfile
from openmj.engines.local.pipelines import Pipelines
from openmj.engines.local.presets import Preset, VideoPreset

#: what the runners can do, without importing them (they import torch through diffusers' types)
IMAGE = frozenset(
    {
        Operation.IMAGINE,
        Operation.REROLL,
        Operation.UPSCALE,
        Operation.VARIATION,
        Operation.REMIX,
        Operation.ZOOM,
        Operation.PAN,
        Operation.MAKE_SQUARE,
        Operation.ENHANCE,
        Operation.BLEND,
        Operation.INPAINT,
        Operation.EDIT,
        Operation.UPLOAD_PAINT,
        Operation.RETEXTURE,
        Operation.REMOVE_BG,
        Operation.SHORTEN,  # reads the model's own text encoder
    }
)
VIDEO = frozenset({Operation.VIDEO, Operation.VIDEO_EXTEND, Operation.VIDEO_UPSCALE})  # with a video model
SUPPORTED = IMAGE | VIDEO | {Operation.DESCRIBE}  # Describe with a captioning model


class LocalEngine:
    def __init__(
        self,
        preset: Preset,
        models_dir: Path,
        device: str | None = None,
        video: VideoPreset | None = None,
        *,
        cpu_offload: bool = False,
        compile: bool = False,
        lock: threading.Lock | None = None,
        caption_source: str | None = None,
    ) -> None:
        self.pipelines = Pipelines(
            preset,
            models_dir,
            device,
            video,
            cpu_offload=cpu_offload,
            compile=compile,
            caption_source=caption_source,
        )
        self._lock = lock or threading.Lock()

    @property
    def model_names(self) -> list[str]:
        return [self.preset.name]

    @property
    def profile(self) -> ModelProfile:
        return self.pipelines.profile

    @property
    def preset(self) -> Preset:
        return self.pipelines.preset

    def load(self) -> None:
        self.pipelines.load()

    def supports(self, operation: Operation) -> bool:
        if operation is Operation.DESCRIBE:
            return self.pipelines.caption_source is not None
        return operation in IMAGE or (operation in VIDEO and self.pipelines.video_preset is not None)

    def run(self, job: EngineJob, control: JobControl) -> EngineResult:
        if self.pipelines.pipe is None:
            self.load()
        # The torch firewall: the runners import torch (through diffusers), so they are imported
        # here, when a job runs, never when the API process imports this module.
        from openmj.engines.local.runners import run_operation

        with self._lock:
            control.check()  # it may have been cancelled while waiting for the device
            return run_operation(self.pipelines, job, control)


class LocalEngines:
    """Several loaded models in one worker (`--model A --model B`): each task runs on the model
    the service routed it to (`task.engine_model`, core/routing.py). They share one lock, so one
    job at a time runs on the device; the first is the main model (and carries the video model)."""

    def __init__(self, engines: list[LocalEngine]) -> None:
        if not engines:
            raise ValueError("at least one model")
        self.engines = {e.preset.name: e for e in engines}
        self.main = engines[0]

    @property
    def profile(self) -> ModelProfile:
        return self.main.profile

    @property
    def model_names(self) -> list[str]:
        return list(self.engines)

    def load(self) -> None:
        for engine in self.engines.values():
            engine.load()

    def engine_for(self, task_model: str) -> LocalEngine:
        return self.engines.get(task_model) or self.main

    def supports(self, operation: Operation) -> bool:
        return self.main.supports(operation)

    def run(self, job: EngineJob, control: JobControl) -> EngineResult:
        return self.engine_for(job.task.engine_model).run(job, control)
