"""The relay engine: a task runs at an upstream provider instead of on a local model.

It is an `Engine` like the local one, so the worker's machinery applies unchanged: the price is
reserved at submit and refunded exactly once if the task fails, the task time-out and cancel work,
results are stored in openmj's media (rehosted: the upstream's links expire and must not leak), and
grids and buttons are openmj's own.

Per task: providers are tried by tier (priority, highest first) and weight, those that cannot do
the operation or are cooling down left out; an upstream failure moves to the next one (that one
excluded for this task) within `RETRY_BUDGET`; a refusal that is the client's fails the task at
once. A follow-up goes only to the provider that made its source (`spec["upstream_parent"]`).
Right after an upstream accepts, its task id is checkpointed into the task (`JobControl`), so a
gateway killed mid-task resumes by polling after restart and never sends the task twice.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import logging
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from openmj.core import words
from openmj.core.tasks import ErrorCode, Operation, Task, TaskError
from openmj.core.video import VIDEO_OPERATIONS
from openmj.engines.base import Engine, EngineJob, EngineResult, JobControl, JobStopped, ModelProfile
from openmj.media.video import Clip, decode_mp4
from openmj.net import ImageFetchError, NetPolicy, fetch_bytes
from openmj.relay.hooks import HOOK_LIFETIME_S, HookUrls
from openmj.relay.providers import Provider
from openmj.relay.upstreams import (
    InputImage,
    Parent,
    Poll,
    Refused,
    Upstream,
    UpstreamError,
    client_for,
    is_policy,
    numbered_prompts,
)
from openmj.relay.waiting import BulkPoller, PolledWatch, Wakeups, Watch

log = logging.getLogger("openmj.relay")

RELAY_MODEL = "relay"  # the served model name of relayed tasks (core/routing.py)
RETRY_BUDGET = 3  # providers tried per task
COOLDOWN_S = 30.0  # after FAILURES_TO_COOL upstream failures in a row, or a 429 without Retry-After
FAILURES_TO_COOL = 3
PROBE_S = 300.0  # a provider whose key was refused is tried again after this long
MAX_CLIP_BYTES = 200 * 1024 * 1024  # a 21 s HD clip is well under this
MAX_DOWNLOADS = 16  # results fetched from upstreams at once, per process
FETCH_BACKOFF_S = (0.5, 1.5)  # waits before the retries of a result that failed to download
POLL_FAILURES = 5  # polls in a row that cannot reach the upstream (and lost_after_s): it lost the task
SENDS_IMAGES = frozenset({Operation.VIDEO, Operation.DESCRIBE, Operation.BLEND})  # pictures, not ids


class Health:
    """Per-process provider health: failures in a row, cool-downs and refused keys."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._running: dict[str, int] = {}

    def available(self, provider: Provider) -> bool:
        with self._lock:
            cool = self._until.get(provider.name, 0.0) <= self._clock()
            return cool and self._running.get(provider.name, 0) < provider.max_concurrency

    def failed(self, provider: Provider, err: UpstreamError) -> None:
        with self._lock:
            n = self._failures[provider.name] = self._failures.get(provider.name, 0) + 1
            wait = 0.0
            if err.key_refused:
                wait = PROBE_S
            elif err.retry_after is not None:
                wait = err.retry_after
            elif "429" in str(err) or n >= FAILURES_TO_COOL:
                wait = COOLDOWN_S
            if wait:
                self._until[provider.name] = max(self._until.get(provider.name, 0.0), self._clock() + wait)
        log.warning("provider %s failed (%s)%s", provider.name, err, f"; cooling {wait:g} s" if wait else "")

    def succeeded(self, provider: Provider) -> None:
        with self._lock:
            self._failures[provider.name] = 0
            self._until.pop(provider.name, None)

    def enter(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = self._running.get(provider.name, 0) + 1

    def leave(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = max(0, self._running.get(provider.name, 0) - 1)


@dataclass(frozen=True)
class Attempt:
    provider: Provider
    upstream_id: str


class RelayEngine:
    def __init__(
        self,
        providers: list[Provider],
        local: Engine | None = None,
        *,
        net: NetPolicy | None = None,
        health: Health | None = None,
        concurrency: int = 256,
        hooks: HookUrls | None = None,
    ) -> None:
        self.providers = providers
        self.concurrency = concurrency  # relayed tasks in flight per worker (they mostly wait)
        self.local = local
        self.net = net or NetPolicy()
        self.health = health or Health()
        self.hooks = hooks
        self.wakeups = Wakeups()
        self._bulk: dict[str, BulkPoller] = {}
        self._bulk_lock = threading.Lock()
        self._downloads = threading.BoundedSemaphore(MAX_DOWNLOADS)
        self._profile = ModelProfile(name=RELAY_MODEL, family="sd15", native_size=1024, steps=0, guidance=0.0)

    # ------------------------------------------------------------------ Engine
    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def model_names(self) -> list[str]:
        return [RELAY_MODEL, *(self.local.model_names if self.local else [])]

    def load(self) -> None:
        if self.local is not None:
            self.local.load()

    def wake(self, task_id: str) -> bool:
        """The upstream called back about `task_id`: poll it now (True if it waits here)."""
        return self.wakeups.wake(task_id)

    def supports(self, operation: Operation) -> bool:
        return any(operation in p.serves for p in self.providers if p.dialect != "local") or (
            self.local is not None and self.local.supports(operation)
        )

    def run(self, job: EngineJob, control: JobControl) -> EngineResult:
        task = job.task
        tried: list[str] = []
        last = "no provider serves this operation"
        resumed = (task.output or {}).get("upstream")
        if resumed and resumed.get("task_id"):  # sent before this process (or worker) stopped
            provider = self._named(str(resumed["provider"]))
            log.info("task %s: resuming upstream task %s at %s", task.id, resumed["task_id"], provider.name)
            try:
                return self._wait(job, control, Attempt(provider, str(resumed["task_id"])))
            except _UpstreamFailed as failed:
                tried.append(provider.name)
                last = failed.message
        for provider in self._candidates(task):
            if len(tried) >= RETRY_BUDGET:
                break
            if provider.name in tried:
                continue
            tried.append(provider.name)
            control.check()
            try:
                if provider.dialect == "local":
                    return self._run_local(job, control)
                return self._once(job, control, provider)
            except UpstreamError as err:
                self.health.failed(provider, err)
                last = str(err)
            except _UpstreamFailed as failed:
                last = failed.message
        if task.spec.get("upstream_parent"):
            raise TaskError(
                ErrorCode.GENERATION_FAILED, f"The provider that made the source image failed: {last}", 502
            )
        raise TaskError(
            ErrorCode.GENERATION_FAILED,
            f"Every provider failed ({', '.join(tried) or 'none available'}): {last}",
            502,
        )

    # ------------------------------------------------------------------ choosing
    def _named(self, name: str) -> Provider:
        for p in self.providers:
            if p.name == name:
                return p
        raise TaskError(
            ErrorCode.GENERATION_FAILED,
            f"The provider '{name}' that holds this task is no longer configured",
            502,
        )

    def _candidates(self, task: Task) -> list[Provider]:
        """Pinned: the source's provider only. Else by tier, weighted random inside a tier
        (seeded by the task, so a retried task tries the same order)."""
        pinned = task.spec.get("upstream_parent")
        if pinned:
            provider = self._named(str(pinned["provider"]))  # only it knows the source task
            if task.operation not in provider.serves:
                raise TaskError(
                    ErrorCode.NOT_SUPPORTED,
                    f"The provider '{provider.name}' that made the source cannot {task.operation.value}",
                    400,
                )
            return [provider]
        rng = random.Random(task.seed)
        usable = [
            p
            for p in self.providers
            if task.operation in p.serves
            and (p.models is None or task.model in p.models)
            and (p.dialect != "local" or (self.local is not None and self.local.supports(task.operation)))
            and self.health.available(p)
        ]
        out: list[Provider] = []
        for tier in sorted({p.priority for p in usable}, reverse=True):
            pool = [p for p in usable if p.priority == tier]
            while pool:
                pick = rng.choices(pool, weights=[p.weight for p in pool])[0]
                out.append(pick)
                pool.remove(pick)
        return out

    # ------------------------------------------------------------------ one provider
    def _run_local(self, job: EngineJob, control: JobControl) -> EngineResult:
        assert self.local is not None
        return self.local.run(job, control)

    def _once(self, job: EngineJob, control: JobControl, provider: Provider) -> EngineResult:
        task = job.task
        client = client_for(provider)
        pinned = task.spec.get("upstream_parent")
        parent = Parent(str(pinned["task_id"]), int(pinned.get("index", 0))) if pinned else None
        start = self._input_images(job) if task.operation in SENDS_IMAGES else None
        try:
            upstream_id = client.submit(task, parent, self._callback_for(task, provider), start)
        except Refused as refused:
            raise _refusal(refused) from refused
        control.checkpoint({"upstream": {"provider": provider.name, "task_id": upstream_id}})
        log.info("task %s sent to %s as %s", task.id, provider.name, upstream_id)
        return self._wait(job, control, Attempt(provider, upstream_id))

    def _input_images(self, job: EngineJob) -> InputImage | None:
        """The pictures as the worker resolved them (a video's first frame, the image to describe,
        the images to blend), and a link to the first: the client's own, else a signed link to
        this gateway's copy of the source image."""
        task = job.task
        if task.operation is Operation.BLEND:
            pictures = list(job.extra.get("blend") or [])
        else:
            picture = job.images.get("start") or job.images.get("source") or job.images.get("upload")
            pictures = [picture] if picture is not None else []
        if not pictures:
            return None
        first, *more = [_data_url(p) for p in pictures]
        link = task.spec.get("video", {}).get("start_url") or task.spec.get("options", {}).get("image_url")
        source = task.spec.get("source")
        if not (link and link.startswith(("http://", "https://"))):
            link = None
            if source and self.hooks is not None:
                path = f"/media/{source['task_id']}/{source['name']}"
                link = self.hooks.signer.sign(path, time.time() + HOOK_LIFETIME_S, task.owner)
        return InputImage(link, first, tuple(more))

    def _callback_for(self, task: Task, provider: Provider) -> str | None:
        if self.hooks is None:
            return None
        wanted = provider.callbacks if provider.callbacks is not None else self.hooks.public_https
        return self.hooks.url_for(task.id) if wanted else None

    def _watch(self, client: Upstream, upstream_id: str) -> Watch:
        if not client.bulk:
            return PolledWatch(client, upstream_id)
        with self._bulk_lock:
            poller = self._bulk.get(client.provider.name)
            if poller is None:
                poller = self._bulk[client.provider.name] = BulkPoller(client)
        return poller.watch(upstream_id)

    def _wait(self, job: EngineJob, control: JobControl, attempt: Attempt) -> EngineResult:
        provider, client = attempt.provider, client_for(attempt.provider)
        watch = self._watch(client, attempt.upstream_id)
        self.wakeups.register(job.task.id, watch.wake)
        self.health.enter(provider)
        try:
            poll = self._poll_until_done(watch, client, control)
        finally:
            self.health.leave(provider)
            self.wakeups.forget(job.task.id)
            watch.close()
        if poll.state == "failed":
            if poll.refused:
                code = ErrorCode.CONTENT_POLICY if is_policy(poll.error) else ErrorCode.INVALID_PROMPT
                raise TaskError(code, poll.error, 400)
            control.checkpoint({})
            raise _UpstreamFailed(f"{provider.name} failed the task: {poll.error}")
        self.health.succeeded(provider)
        clips: list[Clip] | None = None
        output: dict[str, Any] = {}
        if job.task.operation is Operation.DESCRIBE:
            images = [job.images["upload"].convert("RGB")]
            prompts = numbered_prompts(poll.text)
            if len(prompts) < words.DESCRIBE_PROMPTS:
                raise _UpstreamFailed(f"{provider.name} described the image in {len(prompts)} prompts")
            aspect = words.aspect_text(images[0].width, images[0].height)
            output = {"prompts": prompts[: words.DESCRIBE_PROMPTS], "aspect": aspect}
        elif job.task.operation in VIDEO_OPERATIONS:
            clips = [self._download_clip(url) for url in poll.videos or poll.urls]
            images = [clip.frames[0] for clip in clips]
        else:
            images = [self._download(url) for url in poll.urls]
        if not images:
            raise _UpstreamFailed(f"{provider.name} reported no results")
        upstream: dict[str, Any] = {"provider": provider.name, "task_id": attempt.upstream_id}
        cost = provider.cost_of(job.task.operation)
        if cost is not None:
            upstream |= {"cost": cost, "cost_unit": provider.cost_unit}
        if poll.credits is not None:
            upstream["credits"] = poll.credits  # the upstream's own figure
        return EngineResult(
            images=images, seeds=[None] * len(images), videos=clips, output={**output, "upstream": upstream}
        )

    def _poll_until_done(self, watch: Watch, client: Upstream, control: JobControl) -> Poll:
        misses, since = 0, 0.0
        while True:
            control.check()
            try:
                poll = watch.next(control)
                misses = 0
            except UpstreamError as err:
                misses += 1
                since = since if misses > 1 else time.monotonic()
                lost = time.monotonic() - since >= client.provider.lost_after_s
                if misses >= POLL_FAILURES and lost:
                    self.health.failed(client.provider, err)
                    return Poll("failed", error=f"lost contact while waiting ({err})")
                poll = Poll("waiting")
            if poll.state != "waiting":
                return poll
            control.report(poll.progress / 100)

    def _download(self, url: str) -> Image.Image:
        try:
            data = self._fetch(url, self.net)
            return Image.open(io.BytesIO(data)).convert("RGB")
        except Exception as exc:  # a link that expired or does not answer with an image
            raise _UpstreamFailed(
                f"a result could not be fetched from the upstream ({type(exc).__name__})"
            ) from exc

    def _fetch(self, url: str, policy: NetPolicy) -> bytes:
        """A result from the upstream's storage: a few at a time per process (hundreds of tasks
        finishing together must not open thousands of connections), a transient failure (a
        refused connection, a time-out, a 5xx) retried twice before the upstream is failed."""
        for attempt in range(len(FETCH_BACKOFF_S) + 1):
            try:
                with self._downloads:
                    data, _ = asyncio.run(fetch_bytes(url, policy))
                return data
            except ImageFetchError as err:
                transient = (
                    err.code == "timeout" or "download failed" in err.message or "HTTP 5" in err.message
                )
                if not transient or attempt == len(FETCH_BACKOFF_S):
                    raise
                time.sleep(FETCH_BACKOFF_S[attempt])
        raise AssertionError("unreachable")

    def _download_clip(self, url: str) -> Clip:
        """An upstream MP4, decoded to frames (the worker encodes and stores it as its own)."""
        try:
            data = self._fetch(url, dataclasses.replace(self.net, max_bytes=MAX_CLIP_BYTES))
            with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
                f.write(data)
                f.flush()
                return decode_mp4(Path(f.name))
        except Exception as exc:  # expired, not a video, or cut short
            raise _UpstreamFailed(
                f"a clip could not be fetched from the upstream ({type(exc).__name__})"
            ) from exc


def _data_url(picture: Image.Image) -> str:
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class _UpstreamFailed(Exception):
    """The upstream accepted the task and then failed it (its fault): the next provider may."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _refusal(refused: Refused) -> TaskError:
    code = ErrorCode.CONTENT_POLICY if refused.policy else ErrorCode.INVALID_PROMPT
    return TaskError(code, f"The provider refused the request: {refused}", 400)


__all__ = ["RELAY_MODEL", "Health", "JobStopped", "RelayEngine"]
