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
import io
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

from openmj.core import words
from openmj.core.routing import needs, needs_text
from openmj.core.tasks import ErrorCode, Operation, Task, TaskError
from openmj.core.video import VIDEO_OPERATIONS
from openmj.engines.base import Engine, EngineJob, EngineResult, JobControl, JobStopped, ModelProfile
from openmj.media.video import Clip
from openmj.net import NetPolicy
from openmj.relay.clients import client_for
from openmj.relay.health import DatabaseCooldowns, Health
from openmj.relay.hooks import HOOK_LIFETIME_S, HookUrls
from openmj.relay.mjproxy import numbered_prompts, shortened
from openmj.relay.providers import Provider
from openmj.relay.results import Downloads, ResultMissing
from openmj.relay.upstreams import InputImage, Parent, Poll, Refused, Upstream, UpstreamError, is_policy
from openmj.relay.waiting import BulkPoller, PolledWatch, Wakeups, Watch
from openmj.store.db import Database

log = logging.getLogger("openmj.relay")

RELAY_MODEL = "relay"  # the served model name of relayed tasks (core/routing.py)
RETRY_BUDGET = 3  # providers tried per task
POLL_FAILURES = 5  # polls in a row that cannot reach the upstream (and lost_after_s): it lost the task
#: operations whose pictures are sent (a follow-up sent to a provider that did not make its source, too)
SENDS_IMAGES = frozenset(
    {Operation.VIDEO, Operation.DESCRIBE, Operation.BLEND}
    | {Operation.UPLOAD_PAINT, Operation.RETEXTURE, Operation.REMOVE_BG}
)


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
        self.downloads = Downloads(self.net)
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

    def share_health(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        """Cool-downs in the database, seen by every node on it (relay/health.py)."""
        self.health.shared = DatabaseCooldowns(db, loop)

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
        """Those that can run the task (its operation and extras, `needs`), by tier, weighted random
        inside a tier (seeded by the task, so a retried task tries the same order). A follow-up
        of a relayed task goes to the provider that made its source first (only it knows its own
        task id), then to those that take the source picture itself (`BY_PICTURE`)."""
        wanted = needs(task.operation, task.spec)
        self.health.refresh()  # what every node knows of the providers now
        pinned = task.spec.get("upstream_parent")
        maker = str(pinned["provider"]) if pinned else None

        def fits(p: Provider) -> bool:
            if p.dialect == "local":  # a pinned follow-up stays with real Midjourney output
                return maker is None and self.local is not None and self.local.supports(task.operation)
            if not wanted <= p.offers:
                return False
            return task.parent_id is None or p.takes_picture(task.operation)

        usable = [
            p
            for p in self.providers
            if p.name != maker
            and fits(p)
            and (p.models is None or task.model in p.models)
            and self.health.available(p)
        ]
        out = self._ordered(usable, random.Random(task.seed))
        if maker is None:
            return out
        made = next((p for p in self.providers if p.name == maker), None)
        if made is not None and wanted <= made.offers:
            return [made, *out]
        if out:
            return out
        if made is None:
            self._named(maker)  # raises: no longer configured
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            f"The provider '{maker}' that made the source cannot {needs_text(wanted, task.operation)}",
            400,
        )

    @staticmethod
    def _ordered(usable: list[Provider], rng: random.Random) -> list[Provider]:
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
        parent = None
        if pinned and pinned["provider"] == provider.name:  # the maker: it knows its own task
            parent = Parent(str(pinned["task_id"]), int(pinned.get("index", 0)))
        pictures = task.operation in SENDS_IMAGES or (
            task.parent_id is not None and (parent is None or provider.takes_picture(task.operation))
        )
        start = self._input_images(job) if pictures else None
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
        end = job.images.get("end")
        link = task.spec.get("video", {}).get("start_url") or task.spec.get("options", {}).get("image_url")
        source = task.spec.get("source")
        if not (link and link.startswith(("http://", "https://"))):
            link = None
            if source and self.hooks is not None:
                path = f"/media/{source['task_id']}/{source['name']}"
                link = self.hooks.signer.sign(path, time.time() + HOOK_LIFETIME_S, task.owner)
        return InputImage(link, first, tuple(more), _data_url(end) if end is not None else None)

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
        elif job.task.operation is Operation.SHORTEN:  # words only: no picture
            images, output = [], shortened(poll.text)
            if not output["prompts"]:
                raise _UpstreamFailed(f"{provider.name} answered the shorten with no prompts")
        else:
            try:
                clips, images = self._results(job.task.operation, poll)
            except ResultMissing as missing:
                raise _UpstreamFailed(str(missing)) from missing
        if not images and job.task.operation is not Operation.SHORTEN:
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

    def _results(self, operation: Operation, poll: Poll) -> tuple[list[Clip] | None, list[Image.Image]]:
        if operation in VIDEO_OPERATIONS:
            clips = [self.downloads.clip(url) for url in poll.videos or poll.urls]
            return clips, [clip.frames[0] for clip in clips]
        alpha = operation is Operation.REMOVE_BG  # the cut-out keeps its transparency
        return None, [self.downloads.image(url, alpha) for url in poll.urls]

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
