"""Resolve a task's input images before the engine runs: the source of an action, fetched URLs.

Every URL goes through openmj.net (SSRF-safe, size/pixel/format/time limits). A bad image fails
the task with a clear code (the dialects map it: EvoLink image_processing_error, APIXO
INVALID_IMAGE_URL / IMAGE_TOO_LARGE / UNSUPPORTED_FORMAT); the task is refunded like any failure.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from openmj.core.tasks import ErrorCode, Task, TaskError
from openmj.engines.base import EngineJob
from openmj.image_errors import fetch_error
from openmj.media.backend import MediaBackend
from openmj.media.style_codes import style_image
from openmj.media.video import Clip, decode_mp4
from openmj.net import ImageFetchError, NetPolicy, fetch_image


class InputResolver:
    def __init__(self, media: MediaBackend, policy: NetPolicy) -> None:
        self.media = media
        self.policy = policy

    async def fetch(self, url: str) -> Image.Image:
        try:
            return await fetch_image(url, self.policy)
        except ImageFetchError as exc:
            raise fetch_error(url, exc) from exc

    def _clip(self, task_id: str, name: str) -> Clip:
        try:
            data = self.media.read_bytes(task_id, name)  # a local file or an S3 object alike
        except OSError as exc:
            raise TaskError(
                ErrorCode.NOT_FOUND,
                f"The source clip of task {task_id} is no longer available (links expire)",
                404,
            ) from exc
        return decode_mp4(io.BytesIO(data))

    async def __call__(self, task: Task) -> EngineJob:
        job = EngineJob(task=task)
        source = task.spec.get("source")
        if source and source["name"].endswith(".mp4"):  # extend, upscale: the clip's frames
            job.extra["clip"] = await asyncio.to_thread(self._clip, source["task_id"], source["name"])
        elif source:
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
        video = task.spec.get("video", {})
        if video.get("start_url"):
            job.images["start"] = await self.fetch(video["start_url"])
        if video.get("end_url"):
            job.images["end"] = await self.fetch(video["end_url"])
        options = task.spec.get("options", {})
        if options.get("image_url"):
            job.images["upload"] = await self.fetch(options["image_url"])
        mask = options.get("mask") or {}
        if mask.get("url"):
            job.images["mask"] = await self.fetch(mask["url"])
        refs = task.spec.get("refs", {})
        if refs.get("image_prompts"):
            job.extra["image_prompts"] = list(
                await asyncio.gather(*(self.fetch(u) for u in refs["image_prompts"]))
            )
        if refs.get("sref"):
            job.extra["sref"] = [
                (
                    style_image(item["ref"]) if item["ref"].isdigit() else await self.fetch(item["ref"]),
                    item["weight"],
                )
                for item in refs["sref"]
            ]
        if refs.get("oref"):
            job.extra["oref"] = await self.fetch(refs["oref"])
        if options.get("image_urls"):  # blend
            job.extra["blend"] = list(await asyncio.gather(*(self.fetch(u) for u in options["image_urls"])))
        return job
