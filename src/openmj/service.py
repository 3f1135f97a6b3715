"""TaskService: the one place where the rules meet.

Every dialect calls these methods with a key secret and a `TaskRequest`; the service
authenticates, validates, prices, reserves credits and inserts the pending task in one
transaction, or raises `TaskError` having written nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openmj.accounts import Authenticator
from openmj.core import idempotency, video
from openmj.core.accounts import ApiKey, Balance
from openmj.core.checks import require_completed
from openmj.core.dialects import policy
from openmj.core.mapping import random_seed
from openmj.core.operations import (
    PROMPT_SEEDED,
    VALIDATORS,
    ModelCaps,
    request_version,
    require_capability,
    validate_request,
)
from openmj.core.pricing import PriceTable
from openmj.core.prompt.translation import Translator, translate_prompt
from openmj.core.routing import ServedModels, pinned_source
from openmj.core.spec import Spec, TranslationSpec
from openmj.core.tasks import (
    CANCELLED_MESSAGE,
    ErrorCode,
    Operation,
    Status,
    Task,
    TaskError,
    TaskRequest,
    new_task_id,
)
from openmj.core.video import VIDEO_OPERATIONS
from openmj.image_errors import fetch_error
from openmj.moderation import PromptModerator
from openmj.net import (
    ImageFetchError,
    NetPolicy,
    UnsafeURLError,
    check_url,
    decode_data_uri,
    fetch_bytes,
    is_data_uri,
    probe_image,
)
from openmj.store.repo import IdempotencyClaim, OutboxSpec, Repository
from openmj.wakeup import Wakeup

log = logging.getLogger("openmj.service")

DEFAULT_ESTIMATE_SECONDS = 30.0
MAX_TASK_ID = 128


@dataclass(frozen=True)
class Translated:
    """A prompt ready to parse, and the note of its translation (None: used as written)."""

    text: str
    record: TranslationSpec | None


@dataclass(frozen=True)
class Prepared:
    spec: Spec
    seed: int
    price: float
    engine_model: str


class TaskService:
    def __init__(
        self,
        repo: Repository,
        auth: Authenticator,
        prices: PriceTable,
        *,
        task_timeout: float,
        default_concurrency: int,
        queue_cap: int,
        wakeup: Wakeup | None = None,
        seed: int | None = None,
        caps: ModelCaps | None = None,
        models: ServedModels | None = None,
        net: NetPolicy | None = None,
        moderator: PromptModerator | None = None,
        translator: Translator | None = None,
        translate_scope: str = "cjk",
        served: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.repo = repo
        self.auth = auth
        self.prices = prices
        self.task_timeout = task_timeout
        self.default_concurrency = default_concurrency
        self.queue_cap = queue_cap
        self.wakeup = wakeup or Wakeup()
        self.fixed_seed = seed
        self.models = models or ServedModels.single(caps or ModelCaps())
        self.caps = self.models.caps[self.models.main]  # the main model's (video lives with it)
        self.net = net or NetPolicy()
        self.moderator = moderator
        self.translator = translator
        self.translate_scope = translate_scope  # for dialects whose requests have no translation flag
        self._estimates: dict[str, float] = {}
        # (model, operation) → whether a live worker would claim it (nodes.LiveWorkers.serves)
        self.served = served
        self._estimate_lock = asyncio.Lock()

    # ------------------------------------------------------------------ auth
    async def authenticate(self, secret: str | None) -> ApiKey:
        return await self.auth.authenticate(secret)

    # ------------------------------------------------------------------ translation
    async def english(self, prompt: str, requested: bool | None = None) -> Translated:
        """The prompt to parse: in English when translation applies (docs/prompt.md,
        "Translation"). `requested` is the request's own flag (kie/APIXO `enableTranslation`);
        None (no flag in that API) means this server's `--translate-prompts` scope."""
        scope = self.translate_scope if requested is None else ("all" if requested else "off")
        if self.translator is None or scope == "off" or not prompt.strip():
            return Translated(prompt, None)
        try:
            done = await asyncio.to_thread(translate_prompt, prompt, self.translator, scope)
        except Exception as exc:  # the model failed on this text: the client may retry, nothing was written
            log.exception("prompt translation failed")
            raise TaskError(
                ErrorCode.SERVICE_ERROR, f"Prompt translation failed ({type(exc).__name__}); try again", 503
            ) from exc
        if done is None:
            return Translated(prompt, None)
        log.info("prompt translated from %s: %r -> %r", done.language, prompt[:200], done.prompt[:200])
        return Translated(done.prompt, done.record())

    # ------------------------------------------------------------------ submit
    def require_capability(self, operation: Operation) -> None:
        """NOT_SUPPORTED now when this server cannot run `operation` at all (a dialect asks before
        it reads the operation's fields, so a missing feature is not reported as a bad field)."""
        require_capability(operation, self.caps)

    async def submit(self, key: ApiKey, req: TaskRequest, idempotency_key: str | None = None) -> Task:
        """Validate, price and queue `req`; with an Idempotency-Key already used by this key within
        the window, the task it made instead (nothing new is made or charged)."""
        claim = None
        if idempotency_key is not None:
            since = time.time() - idempotency.WINDOW_S
            claim = IdempotencyClaim(idempotency_key, idempotency.fingerprint(req), since)
            if (earlier := await self._earlier(key, claim)) is not None:
                return earlier
        prep = await self._prepare(key, req)
        banned = self._banned_word(prep.spec)
        if banned is not None and policy(req.dialect).refuse_banned:
            raise self._banned_error(banned, prep.spec)
        now = time.time()
        task = self._new_task(key, req, Status.PENDING, now, spec=prep.spec, seed=prep.seed)
        task.engine_model = prep.engine_model
        task.credits_reserved = prep.price
        task.deadline = now + self.task_timeout
        if banned is not None:
            # EvoLink, kie and APIXO report a blocked prompt as a failed task (content policy), not
            # as a refused request; it is never charged and never reaches a worker
            task.status, task.credits_reserved, task.finished_at = Status.FAILED, 0.0, now
            task.error_code = ErrorCode.CONTENT_POLICY.value
            task.error_message = self._banned_error(banned).message
        outcome = await self.repo.insert_task(
            task,
            req.speed.priority,
            max_unfinished=key.concurrency or self.default_concurrency,
            queue_cap=self.queue_cap,
            outbox=OutboxSpec("failed") if banned is not None else None,
            idempotency=claim,
        )
        if outcome == "duplicate" and claim is not None:  # the same key, at the same moment
            earlier = await self._earlier(key, claim)
            if earlier is not None:
                return earlier
        self._raise_refusal(outcome, key, prep.price)
        if banned is not None:
            log.info("task %s failed at once: banned word %r", task.id, banned)
            return task
        log.info("task %s accepted: %s %s by %s", task.id, task.operation, task.speed, key.id)
        self.wakeup.notify()
        return task

    async def _earlier(self, key: ApiKey, claim: IdempotencyClaim) -> Task | None:
        found = await self.repo.idempotent_task(key.id, claim.key, claim.since)
        if found is None:
            return None
        task_id, fingerprint = found
        if fingerprint != claim.fingerprint:
            raise idempotency.reused(claim.key)
        log.info("create with %s %r: task %s again", idempotency.HEADER, claim.key, task_id)
        return await self.get(key, task_id)

    @staticmethod
    def _new_task(
        key: ApiKey, req: TaskRequest, status: Status, now: float, *, spec: Spec, seed: int
    ) -> Task:
        return Task(
            id=new_task_id(now),
            owner=key.id,
            dialect=req.dialect,
            operation=req.operation,
            model=req.model,
            status=status,
            progress=0,
            prompt=req.prompt,
            spec=spec,
            request=req.raw_request,
            speed=req.speed,
            seed=seed,
            created_at=now,
            parent_id=req.parent_id,
            parent_index=req.parent_index,
            user_group=key.group,
            callback_url=req.callback_url,
        )

    @staticmethod
    def _check_access(key: ApiKey, req: TaskRequest) -> None:
        if key.models is not None and req.model not in key.models:
            raise TaskError(
                ErrorCode.MODEL_ACCESS_DENIED, f"Token does not have access to model: {req.model}", 403
            )

    async def _prepare(self, key: ApiKey, req: TaskRequest) -> Prepared:
        """Every check a new task passes before anything is written, and what it will cost."""
        self._check_access(key, req)
        parent = await self._parent(key, req)
        caps = self.models.route(req.operation, request_version(req, parent), parent)
        spec = validate_request(req, parent, caps)
        if req.translation is not None:
            spec["translation"] = req.translation
        elif parent is not None and req.parsed is None and "translation" in parent.spec:
            spec["translation"] = parent.spec["translation"]  # an action keeps its source's prompt
        if (pinned := pinned_source(parent, req.parent_index)) is not None:
            spec["upstream_parent"] = pinned
        self._check_urls(spec)
        self._resolve_random_styles(spec)
        seed = self._seed(req.operation, spec)
        if req.operation in VIDEO_OPERATIONS:
            await self._check_video_frames(spec)
            res, clips = video.resolution(spec), video.clips(spec)
            price = self.prices.video_price(req.operation, res, clips, req.model, key.group)
        else:
            price = self.prices.price(req.operation, req.speed, req.model, key.group, spec.get("quality"))
        return Prepared(spec=spec, seed=seed, price=price, engine_model=caps.name)

    async def _check_video_frames(self, spec: Spec) -> None:
        """A video's start and end images are fetched now: a clip cannot be sized without its
        start image, and a link that does not answer with an image is the client's error (4xx,
        nothing written), not a failed task. The worker fetches them again when it runs."""
        v = spec.get("video", {})
        for field, url in (("start", v.get("start_url")), ("end", v.get("end_url"))):
            if not url:
                continue
            try:
                data, _ = await fetch_bytes(url, self.net)
                _, width, height = probe_image(data, self.net)
            except ImageFetchError as exc:
                err = fetch_error(url, exc)
                err.param = "image_url" if field == "start" else "end_url"
                raise err from exc
            if field == "start":
                video.set_size(spec, width, height)

    def _banned_word(self, spec: Spec) -> str | None:
        if self.moderator is None:
            return None
        prompt = spec.get("prompt", {})
        # a translated prompt is checked in English and as it was written
        original = spec.get("translation", {}).get("original") or ""
        text = " ".join([prompt.get("text") or "", *(prompt.get("params", {}).get("no") or []), original])
        verdict = self.moderator.check(text)
        return None if verdict.allowed else (verdict.word or "?")

    @staticmethod
    def _banned_error(word: str, spec: Spec | None = None) -> TaskError:
        english = (spec or {}).get("translation", {}).get("prompt")
        return TaskError(
            ErrorCode.CONTENT_POLICY,
            f"Content policy violation: your request was blocked by the safety filter (banned word: {word})",
            400,
            param="prompt",
            extra={"banned_word": word, **({"prompt_en": english} if english else {})},
        )

    @staticmethod
    def _raise_refusal(outcome: str, key: ApiKey, price: float) -> None:
        """Turn the store's refusal of an insert into the client's error (nothing was written)."""
        if outcome == "insufficient_credits":
            raise TaskError(
                ErrorCode.INSUFFICIENT_QUOTA,
                f"Insufficient quota: this task costs {price:g} credits. Please top up your account.",
                402,
                extra={"estimated_credits": price},
            )
        if outcome == "too_many_tasks":
            raise TaskError(
                ErrorCode.TOO_MANY_TASKS,
                "Too many unfinished tasks for this key, please wait for some to finish",
                429,
                retry_after=5,
            )
        if outcome == "queue_full":
            raise TaskError(
                ErrorCode.QUEUE_FULL, "The queue is full, please try again later", 429, retry_after=30
            )
        if outcome == "duplicate":  # made by a create that is still being answered; retrying finds it
            raise TaskError(
                ErrorCode.INVALID_REQUEST,
                "A create with this Idempotency-Key is in progress",
                409,
                retry_after=1,
            )

    def _check_urls(self, spec: Spec) -> None:
        """Refuse at submit what the fetcher would refuse anyway: bad schemes, private addresses."""
        refs, opts = spec.get("refs", {}), spec.get("options", {})
        urls = [*refs.get("image_prompts", []), *opts.get("image_urls", [])]
        urls += [s["ref"] for s in refs.get("sref", []) if not s["ref"].isdigit() and s["ref"] != "random"]
        urls += [
            u for u in (refs.get("oref"), opts.get("image_url"), (opts.get("mask") or {}).get("url")) if u
        ]
        for url in urls:
            if is_data_uri(url):
                self._check_inline_image(url)
                continue
            try:
                check_url(url, self.net)
            except UnsafeURLError as exc:
                short = url if len(url) <= 120 else url[:117] + "..."
                raise TaskError(
                    ErrorCode.INVALID_IMAGE_URL,
                    f"Image URL refused: {short}: {exc.message}",
                    400,
                    param="prompt",
                ) from exc

    def _check_inline_image(self, uri: str) -> None:
        """An image sent in the request: refuse now, by its header, what the worker would refuse
        (not an image, too many pixels, a side too long, too thin a shape); decoded later."""
        try:
            data, _ = decode_data_uri(uri, self.net)
            probe_image(data, self.net)
        except ImageFetchError as exc:
            raise fetch_error(uri, exc) from exc

    @staticmethod
    def _resolve_random_styles(spec: Spec) -> None:
        """--sref random picks a style code now, so the task (and a rerun) uses one fixed style."""
        for item in spec.get("refs", {}).get("sref", []):
            if item["ref"] == "random":
                item["ref"] = str(random_seed())
                spec["prompt"].setdefault("warnings", []).append(f"sref_random:{item['ref']}")

    def _seed(self, operation: Operation, spec: Spec) -> int:
        seed = spec.get("prompt", {}).get("params", {}).get("seed")
        if seed is not None and operation in PROMPT_SEEDED:
            return int(seed)
        if self.fixed_seed is not None:
            return self.fixed_seed
        return random_seed()

    async def _parent(self, key: ApiKey, req: TaskRequest) -> Task | None:
        if req.parent_id is None:
            return None
        parent = await self.repo.get_task(req.parent_id)
        if parent is None or parent.owner != key.id:
            raise TaskError(ErrorCode.NOT_FOUND, f"Task not found: {req.parent_id}", 404, param="task_id")
        return parent

    async def balance(self, key: ApiKey) -> Balance:
        """The key's credits now (the key passed in was read when the request was authenticated)."""
        fresh = await self.repo.key_by_id_or_prefix(key.id)
        used = await self.repo.used_credits(key.id)
        return Balance(remaining=fresh.credits if fresh else key.credits, used=used)

    # ------------------------------------------------------------------ read
    async def get(self, key: ApiKey, task_id: str) -> Task:
        # ids are ~30 characters; a longer one cannot exist, so spare the database the look-up
        task = await self.repo.get_task(task_id) if len(task_id) <= MAX_TASK_ID else None
        if task is None or task.owner != key.id:  # another key's task is a 404, never a 403
            raise TaskError(ErrorCode.NOT_FOUND, f"Task not found: {task_id}", 404)
        return task

    async def get_many(self, key: ApiKey, ids: Sequence[str]) -> list[Task]:
        wanted = [i for i in dict.fromkeys(ids) if len(i) <= MAX_TASK_ID]
        return await self.repo.get_tasks(wanted, owner=key.id)

    async def list(self, key: ApiKey, **filters: Any) -> tuple[list[Task], int]:
        return await self.repo.list_tasks(key.id, **filters)

    async def estimate(self, task: Task) -> int | None:
        """Seconds until the result: queue position × average run time, plus this task's remainder;
        None (unknown) for a waiting task that no live worker serves: it runs only once one starts."""
        if (
            task.status is Status.PENDING
            and self.served is not None
            and not await self.served(task.engine_model, task.operation.value)
        ):
            return None
        avg = self._estimates.get(task.operation.value)
        if avg is None:
            async with self._estimate_lock:  # one look-up when many requests miss at once
                avg = self._estimates.get(task.operation.value)
                if avg is None:
                    found = await self.repo.average_duration(task.operation.value)
                    avg = self._estimates[task.operation.value] = found or DEFAULT_ESTIMATE_SECONDS
        if task.status is Status.PENDING:
            ahead = await self.repo.queue_position(task)
            return max(1, round((ahead + 1) * avg))
        if task.status is Status.PROCESSING:
            return max(1, round(avg * (100 - task.progress) / 100))
        return 0

    def forget_estimate(self, operation: Operation) -> None:
        self._estimates.pop(operation.value, None)

    # ------------------------------------------------------------------ cancel
    async def cancel(self, key: ApiKey, task_id: str) -> Task:
        task = await self.get(key, task_id)
        if task.status.terminal:
            raise TaskError(
                ErrorCode.INVALID_REQUEST,
                f"Task {task_id} is already {task.status.value} and cannot be cancelled",
                400,
            )
        cancelled = await self.repo.finish_unsuccessfully(
            task.id,
            Status.CANCELLED,
            ErrorCode.CANCELLED.value,
            CANCELLED_MESSAGE,
            refund=True,
            outbox=OutboxSpec("cancelled"),
            allowed_from=(Status.PENDING.value, Status.MODAL.value),
        )
        if cancelled is None:
            # running: the worker stops at the next sampler step and settles the task itself
            await self.repo.request_cancel(task.id)
            for _ in range(100):
                await asyncio.sleep(0.1)
                task = await self.get(key, task_id)
                if task.status.terminal:
                    return task
            return task
        return cancelled

    # ---- modal (midjourney-proxy)
    # Custom Zoom, Vary (Region) and remix actions need a second request with more input (a
    # prompt with --zoom, a mask). The action is stored first as a MODAL task: nothing is charged
    # and no worker claims it (workers claim only PENDING). Submitting the modal runs the same
    # checks as `submit` and turns that same task (same id, as midjourney-proxy does) into a
    # pending one.

    async def open_modal(self, key: ApiKey, req: TaskRequest) -> Task:
        """Store `req` (an action on a finished task) as a MODAL task waiting for its input."""
        if req.operation not in VALIDATORS:
            raise TaskError(
                ErrorCode.NOT_SUPPORTED, f"Operation '{req.operation.value}' is not supported yet", 400
            )
        self._check_access(key, req)
        parent = await self._parent(key, req)
        # refuse now what the modal submit would refuse anyway: the client learns it at once
        index = req.parent_index if req.parent_index is not None else 0
        require_completed(parent, index, field=req.index_field, base=req.index_base)
        spec: Spec = {
            "modal": {"params": dict(req.params), "index_naming": [req.index_field, req.index_base]}
        }
        task = self._new_task(key, req, Status.MODAL, time.time(), spec=spec, seed=0)
        # no per-key limit: a MODAL task takes no queue slot (it is not "unfinished" work)
        await self.repo.insert_task(task, 0, max_unfinished=None, queue_cap=2**62)
        log.info("task %s waits for modal input: %s by %s", task.id, task.operation, key.id)
        return task

    async def submit_modal(
        self,
        key: ApiKey,
        task_id: str,
        *,
        prompt: str,
        parsed: dict[str, Any] | None,
        params: dict[str, Any],
        request: dict[str, Any] | None = None,
        translation: TranslationSpec | None = None,
    ) -> Task:
        """Complete a MODAL task: `params` (e.g. `scale`, `mask`) join the stored ones, `parsed`
        is the remix prompt (None keeps the source's). Validated, priced and reserved exactly as
        `submit`; the task becomes PENDING under the same id."""
        task = await self.get(key, task_id)
        if task.status is not Status.MODAL:
            raise TaskError(
                ErrorCode.INVALID_REQUEST,
                f"Task {task_id} is {task.status.value}, not waiting for modal input",
                400,
                param="taskId",
            )
        modal = task.spec.get("modal", {})
        field, base = modal.get("index_naming") or ("image_number", 0)
        req = TaskRequest(
            index_field=field,
            index_base=base,
            operation=task.operation,
            model=task.model,
            dialect=task.dialect,
            prompt=prompt or task.prompt,
            parsed=parsed,
            speed=task.speed,
            params={**modal.get("params", {}), **params},
            parent_id=task.parent_id,
            parent_index=task.parent_index,
            callback_url=task.callback_url,
            raw_request={**task.request, **(request or {})},
            translation=translation,
        )
        prep = await self._prepare(key, req)
        banned = self._banned_word(prep.spec)
        if banned is not None:
            raise self._banned_error(banned, prep.spec)
        outcome = await self.repo.activate_modal(
            task.id,
            key.id,
            prompt=req.prompt,
            spec=prep.spec,
            request=req.raw_request,
            seed=prep.seed,
            price=prep.price,
            priority=req.speed.priority,
            deadline=time.time() + self.task_timeout,
            max_unfinished=key.concurrency or self.default_concurrency,
            queue_cap=self.queue_cap,
        )
        if outcome == "not_modal":  # a concurrent submit of the same modal won
            raise TaskError(ErrorCode.INVALID_REQUEST, f"Task {task_id} is not waiting for modal input", 400)
        self._raise_refusal(outcome, key, prep.price)
        log.info("task %s accepted from modal: %s %s by %s", task.id, req.operation, req.speed, key.id)
        self.wakeup.notify()
        return await self.get(key, task_id)
