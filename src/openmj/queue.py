"""The queue is the task table: workers claim rows with a lease, heartbeat, and settle them.

A task accepted is never lost: if a worker dies (SIGKILL, power loss), its lease expires and the
reaper returns the task to pending (up to `max_attempts`), so the next worker — in this process
after a restart, or on another node — runs it again from the same stored spec and seeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openmj.config import Settings
from openmj.core import idempotency
from openmj.core.dialects import media_lifetime, policy
from openmj.core.tasks import CANCELLED_MESSAGE, ErrorCode, ImageResult, Operation, Status, Task, TaskError
from openmj.engines.base import Engine, EngineJob, EngineResult, JobControl, JobStopped
from openmj.media.backend import MediaBackend
from openmj.media.grid import GRID_NAME, grid_size, make_grid
from openmj.moderation import ImageModerator
from openmj.store import registry
from openmj.store.limits import forget_before
from openmj.store.repo import OutboxSpec, Repository
from openmj.wakeup import Wakeup

log = logging.getLogger("openmj.queue")


def worker_name() -> str:
    return f"{socket.gethostname()}:{secrets.token_hex(4)}"


class Worker:
    def __init__(
        self,
        repo: Repository,
        engine: Engine,
        media: MediaBackend,
        settings: Settings,
        wakeup: Wakeup,
        *,
        prepare: Callable[[Task], Awaitable[EngineJob]] | None = None,
        on_finish: Callable[[Task], None] | None = None,
        image_moderator: ImageModerator | None = None,
        on_engine_run: Callable[[Task, str, float], None] | None = None,
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.media = media
        self.settings = settings
        self.wakeup = wakeup
        self.id = worker_name()
        self.prepare = prepare
        self.on_finish = on_finish
        self.on_engine_run = on_engine_run  # (task, outcome, seconds) of each Engine.run: /metrics
        self._running: set[JobControl] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.image_moderator = image_moderator
        # an engine that mostly waits (the relay polls upstreams) runs many tasks at once, each
        # in a thread of its own pool; a local model runs one (its device is the limit)
        self.concurrency = max(1, int(getattr(engine, "concurrency", 1)))
        # the operations it claims: None when it runs them all (the claim query stays the plain one)
        ops = [op.value for op in Operation if engine.supports(op)]
        self.operations = None if len(ops) == len(Operation) else ops
        self._pool = (
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"relay-{self.id}")
            if self.concurrency > 1
            else None
        )

    @property
    def running(self) -> int:
        """Tasks this worker is running now."""
        return len(self._running)

    def shutdown(self) -> None:
        for control in list(self._running):
            control.shutdown()

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("worker %s started (%d at a time)", self.id, self.concurrency)
        if self.concurrency > 1:
            await self._run_many(stop)
            return
        while not stop.is_set():
            try:
                worked = await self.run_one()
            except Exception:  # the loop must survive a database hiccup
                log.exception("worker %s: unexpected error", self.id)
                worked = False
            if not worked:
                await self._idle()

    async def _idle(self) -> None:
        self.wakeup.event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.event.wait(), self.settings.poll_seconds)

    async def _run_many(self, stop: asyncio.Event) -> None:
        """Claim while a slot is free; each claimed task runs as its own coroutine."""
        slots = asyncio.Semaphore(self.concurrency)
        jobs: set[asyncio.Task[None]] = set()

        def done(job: asyncio.Task[None]) -> None:
            jobs.discard(job)
            slots.release()

        while not stop.is_set():
            await slots.acquire()
            try:
                task = await self._claim()
            except Exception:
                log.exception("worker %s: unexpected error", self.id)
                task = None
            if task is None:
                slots.release()
                await self._idle()
                continue
            job = asyncio.create_task(self._run(task))
            jobs.add(job)
            job.add_done_callback(done)
        if jobs:
            await asyncio.wait(jobs)

    async def _claim(self) -> Task | None:
        return await self.repo.claim(
            self.id, self.settings.lease_seconds, self.engine.model_names, self.operations
        )

    async def run_one(self) -> bool:
        task = await self._claim()
        if task is None:
            return False
        await self._run(task)
        return True

    async def _run(self, task: Task) -> None:
        log.info("worker %s: running %s (%s, attempt %d)", self.id, task.id, task.operation, task.attempts)
        loop = asyncio.get_running_loop()
        control = JobControl(deadline=task.deadline)
        control.on_checkpoint = self._checkpointer(task, loop)
        self._running.add(control)
        beat = asyncio.create_task(self._heartbeat(task, control))
        try:
            if not self.engine.supports(task.operation):
                raise TaskError(
                    ErrorCode.NOT_SUPPORTED,
                    f"The model '{self.engine.profile.name}' cannot run {task.operation.value} tasks",
                    400,
                )
            job = await self._job(task)
            result = await self._timed_run(task, job, control)
        except JobStopped as stopped:
            await self._stopped(task, stopped.reason)
        except TaskError as err:
            await self._fail(task, err.code.value, err.message)
        except Exception as exc:
            log.exception("task %s failed", task.id)
            await self._fail(
                task, ErrorCode.GENERATION_FAILED.value, f"Generation failed: {type(exc).__name__}"
            )
        else:
            kept = await self._moderate(task, result)
            if kept is not None:
                await self._complete(task, kept)
        finally:
            self._running.discard(control)
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _timed_run(self, task: Task, job: EngineJob, control: JobControl) -> EngineResult:
        """Engine.run in its thread; its duration and outcome go to `on_engine_run`."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await loop.run_in_executor(self._pool, self.engine.run, job, control)
            outcome = "completed"
            return result
        except JobStopped as stopped:
            outcome = stopped.reason
            raise
        finally:
            if self.on_engine_run is not None:
                self.on_engine_run(task, outcome, time.perf_counter() - started)

    def _checkpointer(self, task: Task, loop: asyncio.AbstractEventLoop) -> Callable[[dict[str, Any]], None]:
        """For the engine's thread: store a note with the task and wait until it is written."""

        def save(note: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(self.repo.save_output(task.id, self.id, note), loop).result(60)

        return save

    async def _job(self, task: Task) -> EngineJob:
        """The engine's inputs: the source image of an action, fetched URLs (openmj.inputs)."""
        return EngineJob(task=task) if self.prepare is None else await self.prepare(task)

    async def _heartbeat(self, task: Task, control: JobControl) -> None:
        last = -1
        # many waiting tasks would write many heartbeats: they beat a third of a lease apart
        every = self.settings.heartbeat_seconds
        if self.concurrency > 1:
            every = max(every, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            progress = control.progress
            flag = await self.repo.heartbeat(
                task.id, self.id, self.settings.lease_seconds, progress if progress != last else None
            )
            if flag is None:  # lease lost (reaped or settled elsewhere): stop working on it
                control.cancel()
                return
            if flag:
                control.cancel()
            if progress != last and task.callback_url and policy(task.dialect).progress_callbacks:
                await self.repo.record_progress_event(task.id, OutboxSpec(f"progress:{progress}"))
            last = progress

    def _save_clips(self, task: Task, result: EngineResult) -> list[ImageResult]:
        """Each clip as an H.264 MP4 with a WebP thumbnail of its first frame, side by side."""
        from openmj.media.video import CRF, CRF_UPSCALED, encode_mp4, thumbnail

        crf = CRF_UPSCALED if task.operation is Operation.VIDEO_UPSCALE else CRF

        def one(i: int) -> ImageResult:
            clip = (result.videos or [])[i]
            width, height = clip.frames[0].size
            thumb = f"{i}_thumb.webp"
            self.media.save_bytes(task.id, thumb, thumbnail(clip.frames[0]), "image/webp", width, height)
            stored = self.media.save_bytes(
                task.id, f"{i}.mp4", encode_mp4(clip.frames, clip.fps, crf=crf), "video/mp4", width, height
            )
            return stored._replace(
                seed=result.seeds[i], frames=len(clip.frames), fps=clip.fps, thumbnail=thumb
            )

        count = len(result.videos or [])
        with ThreadPoolExecutor(max_workers=min(count, os.cpu_count() or 1) or 1) as pool:
            return list(pool.map(one, range(count)))

    async def _complete(self, task: Task, result: EngineResult) -> None:
        images = list(zip(result.images, result.seeds, strict=True))

        def save() -> list[ImageResult]:
            if result.videos is not None:
                return self._save_clips(task, result)

            # the PNG encoder releases the GIL: the images are written side by side, one per core
            def one(i: int) -> ImageResult:
                return self.media.save_image(task.id, f"{i}.png", images[i][0], images[i][1])

            with ThreadPoolExecutor(max_workers=min(len(images), os.cpu_count() or 1) or 1) as pool:
                return list(pool.map(one, range(len(images))))

        stored = await asyncio.to_thread(save)
        # the grid (four times one image's pixels) is written after the task is answered; until
        # then, or if this process dies first, the media route makes it from the four images
        grid = None
        if len(stored) == 4 and result.videos is None:
            width, height = grid_size(result.images)
            grid = ImageResult(name=GRID_NAME, width=width, height=height)
        expires = time.time() + media_lifetime(task.dialect, task.spec.get("version"))
        ok = await self.repo.complete(
            task.id, self.id, stored, grid, expires, OutboxSpec("completed"), output=result.output
        )
        if not ok:
            log.warning("task %s was settled elsewhere while running; discarding its images", task.id)
            fresh = await self.repo.get_task(task.id)
            if fresh is None or fresh.status is not Status.COMPLETED:
                await asyncio.to_thread(self.media.delete_task, task.id)
        else:
            log.info("task %s completed", task.id)
            if grid is not None:
                job = asyncio.create_task(asyncio.to_thread(self._write_grid, task.id, result.images))
                self._background.add(job)
                job.add_done_callback(self._background.discard)
        self._finished(task)

    def _write_grid(self, task_id: str, images: list[Any]) -> None:
        try:
            self.media.save_image(task_id, GRID_NAME, make_grid(images))
        except OSError:  # deleted meanwhile (cancelled, expired): the media route repairs otherwise
            log.warning("task %s: the grid could not be written now", task_id)

    async def _moderate(self, task: Task, result: EngineResult) -> EngineResult | None:
        """Remove flagged outputs; with none left the task fails, and is not refunded (EvoLink's mj-v7 page:
        credits for outputs removed by moderation are not returned)."""
        if self.image_moderator is None or not result.images:
            return result
        flags = await asyncio.to_thread(self.image_moderator.flagged, result.images)
        if not any(flags):
            return result
        keep = [i for i, bad in enumerate(flags) if not bad]
        kept = [(result.images[i], result.seeds[i]) for i in keep]
        log.info("task %s: moderation removed %d of %d images", task.id, len(flags) - len(kept), len(flags))
        if not kept:
            await self._settle(
                task,
                Status.FAILED,
                ErrorCode.CONTENT_POLICY.value,
                "Content policy violation: every generated image was removed by the safety filter",
                refund=False,
            )
            return None
        videos = None if result.videos is None else [result.videos[i] for i in keep]
        return EngineResult(
            images=[k[0] for k in kept], seeds=[k[1] for k in kept], videos=videos, output=result.output
        )

    async def _stopped(self, task: Task, reason: str) -> None:
        if reason == "shutdown":
            await self.repo.release(task.id, self.id)
            log.info("task %s handed back to the queue at shutdown", task.id)
            return
        if reason == "cancelled":
            await self._settle(task, Status.CANCELLED, ErrorCode.CANCELLED.value, CANCELLED_MESSAGE)
        else:
            await self._fail(task, ErrorCode.GENERATION_TIMEOUT.value, "Generation timed out")

    async def _fail(self, task: Task, code: str, message: str) -> None:
        log.info("task %s failed: %s %s", task.id, code, message)
        await self._settle(task, Status.FAILED, code, message)

    async def _settle(
        self, task: Task, status: Status, code: str, message: str, *, refund: bool = True
    ) -> None:
        """End the task this worker holds unsuccessfully; its callback is queued in the same step."""
        await self.repo.finish_unsuccessfully(
            task.id, status, code, message, refund=refund, outbox=OutboxSpec(status.value), worker_id=self.id
        )
        self._finished(task)

    def _finished(self, task: Task) -> None:
        if self.on_finish is not None:
            self.on_finish(task)


class Reaper:
    """Returns tasks of dead workers to the queue, fails overdue tasks, deletes expired media."""

    def __init__(self, repo: Repository, media: MediaBackend, settings: Settings, wakeup: Wakeup) -> None:
        self.repo = repo
        self.media = media
        self.settings = settings
        self.wakeup = wakeup
        self._last_media_sweep = 0.0
        self._last_registry_sweep = 0.0

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("reaper: unexpected error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.reaper_seconds)

    async def sweep(self) -> None:
        now = time.time()
        for task in await self.repo.expired_leases(now):
            if task.attempts >= self.settings.max_attempts:
                await self.repo.finish_unsuccessfully(
                    task.id,
                    Status.FAILED,
                    ErrorCode.GENERATION_FAILED.value,
                    f"The worker stopped {task.attempts} times while running this task",
                    refund=True,
                    outbox=OutboxSpec("failed"),
                    allowed_from=(Status.PROCESSING.value,),
                )
            elif await self.repo.requeue(task.id):
                log.warning("task %s: worker lease expired, back to the queue", task.id)
                self.wakeup.notify()
        for task in await self.repo.overdue(now):
            await self.repo.finish_unsuccessfully(
                task.id,
                Status.FAILED,
                ErrorCode.GENERATION_TIMEOUT.value,
                "Generation timed out",
                refund=True,
                outbox=OutboxSpec("failed"),
            )
        if now - self._last_registry_sweep >= self.settings.registry_seconds:
            self._last_registry_sweep = now
            # worker processes silent past the TTL (killed, machine lost) leave the registry
            if gone := await registry.forget_silent(self.repo.db, now - self.settings.worker_ttl_seconds):
                log.warning("worker registry: %d silent worker process(es) removed", gone)
        if now - self._last_media_sweep >= self.settings.media_cleanup_seconds:
            self._last_media_sweep = now
            await self.delete_expired_media(now)
            await self.delete_old_tasks(now)
            await self.repo.delete_idempotency_before(now - idempotency.WINDOW_S)
            await forget_before(self.repo.db, int(now // 60) - 2)  # the shared rate counters

    async def delete_old_tasks(self, now: float, batch: int = 500) -> int:
        """The retention job: finished tasks past `task_retention_days`, `batch` per transaction,
        yielding between batches so submits and workers are never held up for long."""
        if self.settings.task_retention_days <= 0:
            return 0
        cutoff = now - self.settings.task_retention_days * 86400
        deleted = 0
        while True:
            ids = await self.repo.delete_finished_before(cutoff, batch)
            if ids:  # if any file is left
                await asyncio.to_thread(self.media.delete_tasks, ids)
            deleted += len(ids)
            if len(ids) < batch:
                break
            await asyncio.sleep(0)  # let waiting writers in between batches
        if deleted:
            log.info("retention: deleted %d tasks finished before %.0f", deleted, cutoff)
        return deleted

    async def delete_expired_media(self, now: float) -> int:
        ids = await self.repo.expired_media(now)
        if ids:  # one call for all of them: an S3 store deletes up to 1000 keys per request
            await asyncio.to_thread(self.media.delete_tasks, ids)
        await self.repo.mark_media_deleted(ids)
        if ids:
            log.info("deleted the media of %d expired tasks", len(ids))
        return len(ids)
