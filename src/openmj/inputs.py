"""Resolve a task's input images before the engine runs: the source image of an action, etc."""

from __future__ import annotations

import asyncio

from openmj.core.tasks import ErrorCode, Task, TaskError
from openmj.engines.base import EngineJob
from openmj.media.storage import MediaStore


class InputResolver:
    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def __call__(self, task: Task) -> EngineJob:
        job = EngineJob(task=task)
        source = task.spec.get("source")
        if source:
            try:
                job.images["source"] = await asyncio.to_thread(
                    self.media.load_image, source["task_id"], source["name"]
                )
            except (FileNotFoundError, OSError) as exc:
                raise TaskError(
                    ErrorCode.NOT_FOUND,
                    f"The source image of task {source['task_id']} is no longer available (links expire)",
                    404,
                ) from exc
        return job
