"""The engine protocol: what the worker asks of anything that makes images.

`Engine.run` is blocking (torch work); the worker calls it in a thread and talks to it through
a `JobControl`: the engine reports step progress and checks, at every step, whether it should stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from openmj.core.families import family as family_traits
from openmj.core.mapping import GenerationPlan, plan_generation
from openmj.core.tasks import Operation, Task
from openmj.media.video import Clip


class JobStopped(Exception):
    """Raised inside an engine when the job was cancelled or ran past its deadline."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "cancelled" | "timeout" | "shutdown"


class JobControl:
    """Shared between the worker (event loop) and the engine (its thread)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._cancel = threading.Event()
        self._shutdown = threading.Event()
        self._lock = threading.Lock()
        self._progress = 0
        # set by the worker: stores a note with the task at once (the relay's upstream task id)
        self.on_checkpoint: Callable[[dict[str, Any]], None] | None = None

    @property
    def progress(self) -> int:
        with self._lock:
            return self._progress

    def report(self, fraction: float) -> None:
        """Progress 0..1 of the whole job; never goes backwards, 100 is left for completion."""
        pct = max(0, min(99, int(fraction * 100)))
        with self._lock:
            self._progress = max(self._progress, pct)

    def checkpoint(self, note: dict[str, Any]) -> None:
        """Persist `note` as the task's output now, so a re-run after a crash can resume from it."""
        if self.on_checkpoint is not None:
            self.on_checkpoint(note)

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """The process is stopping: end the job so the task can go back to the queue."""
        self._shutdown.set()

    def stop_reason(self) -> str | None:
        if self._cancel.is_set():
            return "cancelled"
        if self._shutdown.is_set():
            return "shutdown"
        if self.deadline is not None and time.time() > self.deadline:
            return "timeout"
        return None

    def check(self) -> None:
        reason = self.stop_reason()
        if reason:
            raise JobStopped(reason)


@dataclass
class EngineJob:
    task: Task
    images: dict[str, Image.Image] = field(
        default_factory=dict
    )  # inputs resolved by the worker ("source", ...)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EngineResult:
    images: list[Image.Image]  # of a video task: one frame of each clip (what moderation sees)
    seeds: list[int | None]
    videos: list[Clip] | None = None  # a video task's clips, one per image above
    output: dict[str, Any] | None = None  # a text result (describe, shorten: core/words.py)


@dataclass(frozen=True)
class ModelProfile:
    """What the rest of openmj needs to know about a loaded model, without importing torch."""

    name: str
    family: str
    native_size: int  # the side of the model's square training size (512, 1024)
    steps: int
    guidance: float
    size_multiple: int = 8  # width/height must be multiples of this (the VAE's scale factor)
    licence: str = ""
    has_ip_adapter: bool = False


def plan_for(profile: ModelProfile, task: Task, *, n_images: int | None = None) -> GenerationPlan:
    """The sampler plan of a task on a model: its prompt and parameters through the model's
    family (core/mapping.py). Imagine and Reroll make a grid (24 sketches for a V8.x draft);
    an action re-renders four images at full quality (Midjourney: Vary/Enhance of a draft)."""
    prompt = task.spec.get("prompt", {})
    params = dict(prompt.get("params", {}))
    imagine = task.operation in (Operation.IMAGINE, Operation.REROLL)
    if not imagine:
        params.pop("draft", None)
        n_images = n_images or 4
    return plan_generation(
        text=prompt.get("text", ""),
        params=params,
        segments=prompt.get("segments"),
        seed=task.seed,
        speed=task.speed,
        native_side=profile.native_size,
        size_multiple=profile.size_multiple,
        steps=profile.steps,
        guidance=profile.guidance,
        n_images=n_images,
        family=family_traits(profile.family),
        version=task.spec.get("version") or prompt.get("effective_model"),
        hd=task.spec.get("quality") == "hd",
    )


class Engine(Protocol):
    @property
    def profile(self) -> ModelProfile: ...

    @property
    def model_names(self) -> list[str]:
        """The served models this engine runs; a worker claims only their tasks."""
        ...

    def load(self) -> None:
        """Load weights now (at start-up), raising EngineLoadError with a clear message."""

    def supports(self, operation: Operation) -> bool: ...

    def run(self, job: EngineJob, control: JobControl) -> EngineResult: ...


class EngineLoadError(Exception):
    """The configured model cannot be loaded; the message says what to do instead."""
