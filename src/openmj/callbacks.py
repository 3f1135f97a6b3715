"""Outbox delivery: POST each queued callback, signed, with the retry schedule of its dialect.

The outbox rows are written by the repository in the same transaction as the status change they
report (``OutboxSpec``), so a callback is never lost: this module only reads due rows, delivers
them and records the outcome. Rows live in the database, so deliveries survive restarts; a row
claimed by a deliverer that died becomes due again when its lease expires.

Rules (docs/callbacks.md):
- the body is what the dialect's renderer returns for (task, event), compact UTF-8 JSON;
- every request carries ``X-OpenMJ-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``;
- the URL is checked again at delivery on the resolved address (``openmj.net.post_json``): https
  only, ≤ 2048 characters, public addresses only, no redirects (a 3xx is a failed delivery);
- any 2xx is delivered; other outcomes are retried after the dialect's delays, then "dead";
- a URL that the address rules refuse is dead at once: retrying cannot make it acceptable;
- progress events (``progress:NN``, midjourney-proxy) are best-effort: never retried, and
  skipped when a newer or already-sent event of the same task supersedes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from openmj import jsonwire
from openmj.core.dialects import POLICIES, CallbackSchedule
from openmj.core.tasks import Status, Task
from openmj.net import NetPolicy, post_json
from openmj.store.models import OutboxRow
from openmj.store.repo import Repository

log = logging.getLogger("openmj.callbacks")

#: (task, event) -> (JSON body, extra headers). Provided per dialect by the dialect modules.
#: A renderer may also be a coroutine function.
Renderer = Callable[
    [Task, str],
    tuple[dict[str, Any] | list[Any], dict[str, str]]
    | Awaitable[tuple[dict[str, Any] | list[Any], dict[str, str]]],
]


#: a delivery's time-out and retries, per dialect (the table is openmj.core.dialects.POLICIES)
Schedule = CallbackSchedule
SCHEDULES: dict[str, Schedule] = {name: p.callbacks for name, p in POLICIES.items()}

SIGNATURE_HEADER = "X-OpenMJ-Signature"
TIMESTAMP_HEADER = "X-OpenMJ-Timestamp"
EVENT_HEADER = "X-OpenMJ-Event"
DELIVERY_HEADER = "X-OpenMJ-Delivery"  # the outbox row id: the same on every retry, for deduplication
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between t and its own clock

MAX_URL_LENGTH = 2048
MAX_CONCURRENT = 8
#: URL refusals that no retry can change (the address rules are checked again on every attempt,
#: so a name that moved to a private address stays refused; retrying would only probe it again)
PERMANENT_CODES = frozenset(
    {"https_required", "url_too_long", "invalid_url", "scheme_not_allowed", "blocked_address"}
)
#: headers a renderer may not set: ours (so they cannot be forged) and the ones httpx owns
_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_HEADER, DELIVERY_HEADER, "Host", "Content-Length")
)
_ERROR_CHARS = 500  # last_error is for operators; a receiver cannot fill the database through it


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``b"<timestamp>." + body`` (the timestamp binds the body to a time)."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:
    """What a receiver does (docs/callbacks.md), usable by Python receivers as is."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    # several v1 values are allowed so a sender can sign with an old and a new secret while rotating
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


def is_progress(event: str) -> bool:
    return event.startswith("progress:")


def event_rank(event: str) -> tuple[int, int]:
    """midjourney-proxy's status order (api-dialects.md §4.6): submitted < in progress by percent < final."""
    if is_progress(event):
        try:
            return (1, int(event.partition(":")[2]))
        except ValueError:
            return (1, 0)
    try:
        status = Status(event)
    except ValueError:
        return (0, 0)
    if status.terminal:
        return (2, 0)
    return (1, 0) if status is Status.PROCESSING else (0, 0)


def encode_body(body: dict[str, Any] | list[Any]) -> bytes:
    # compact and UTF-8 (not \u escapes): what the receiver hashes is exactly what we send; a
    # string that cannot be encoded is scrubbed rather than abandoning the callback
    return jsonwire.dumps(body)


class CallbackDeliverer:
    """Delivers due outbox rows, at most ``concurrency`` at once, one at a time per task (in order)."""

    def __init__(
        self,
        repo: Repository,
        renderers: Mapping[str, Renderer],
        secret: bytes,
        policy: NetPolicy,
        *,
        poll_seconds: float = 0.5,
        schedules: Mapping[str, Schedule] = SCHEDULES,
        clock: Callable[[], float] = time.time,
        concurrency: int = MAX_CONCURRENT,
    ) -> None:
        if not secret:
            raise ValueError("the callback signing secret must not be empty")
        self.repo = repo
        self.renderers = renderers
        self.secret = secret
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.schedules = schedules
        self.clock = clock
        self.concurrency = max(1, concurrency)
        # A claimed row must be settled before its lease ends, or a second deliverer would send it
        # too. A claimed row may wait for one earlier row of its task, so allow two deliveries.
        longest = max((s.timeout for s in schedules.values()), default=30.0)
        self.lease_seconds = 2 * longest + 30.0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_of_task: dict[str, asyncio.Task[None]] = {}
        self._next_due: float | None = None  # earliest retry this deliverer scheduled itself

    # ------------------------------------------------------------------ loop
    def wake(self) -> None:
        """Deliver now: a new outbox row was written. Safe to call from any thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self, stop: asyncio.Event, *, grace_seconds: float = 10.0) -> None:
        """Deliver until ``stop`` is set; then give in-flight deliveries ``grace_seconds`` to end
        (one cut short keeps its lease and is sent again after it expires)."""
        self._loop = asyncio.get_running_loop()
        log.info("callback deliverer started")
        try:
            while not stop.is_set():
                self._wake.clear()  # before claiming: a wake-up during the pass is not lost
                try:
                    await self._claim_and_start(self.concurrency - len(self._inflight))
                except Exception:  # a database hiccup must not end the loop
                    log.exception("callbacks: claiming due deliveries failed")
                await self._idle(stop)
        finally:
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=grace_seconds)
            for t in list(self._inflight):
                t.cancel()
            for t in list(self._inflight):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for a wake-up (a new row, or a delivery ended: a free slot, maybe a retry time),
        stop, the next retry this deliverer scheduled, or the poll interval (rows written or
        rescheduled by other processes)."""
        timeout = self.poll_seconds
        if self._next_due is not None:
            timeout = max(0.0, min(timeout, self._next_due - self.clock()))
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def deliver_due(self) -> int:
        """One pass: claim what is due now, deliver it and wait for the outcome. Returns the
        number of rows handled (delivered, rescheduled, dead or skipped)."""
        started = await self._claim_and_start(self.concurrency)
        if started:
            await asyncio.wait(started)
        return len(started)

    async def _claim_and_start(self, free: int) -> list[asyncio.Task[None]]:
        if free <= 0:
            return []
        now = self.clock()
        if self._next_due is not None and self._next_due <= now:
            self._next_due = None  # it is due now, so the claim below sees it
        rows = await self.repo.due_outbox(now, self.lease_seconds, limit=free)
        return [self._start(row) for row in rows]

    def _start(self, row: OutboxRow) -> asyncio.Task[None]:
        # One task's events go out in the order they were written: each waits for the previous.
        previous = self._last_of_task.get(row.task_id)
        job = asyncio.create_task(self._after(previous, row), name=f"callback-{row.id}")
        self._last_of_task[row.task_id] = job
        self._inflight.add(job)

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            if self._last_of_task.get(row.task_id) is t:
                del self._last_of_task[row.task_id]
            self._wake.set()  # a slot is free, and the loop should see any retry time just set

        job.add_done_callback(done)
        return job

    async def _after(self, previous: asyncio.Task[None] | None, row: OutboxRow) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self.deliver(row)
        except Exception:  # the lease expires and the row is tried again: never lost, never fatal
            log.exception("callbacks: delivery %s of task %s failed unexpectedly", row.id, row.task_id)

    # ------------------------------------------------------------------ one delivery
    async def deliver(self, row: OutboxRow) -> None:
        """Send one claimed row and record the outcome."""
        schedule = self.schedules.get(row.dialect)
        renderer = self.renderers.get(row.dialect)
        if renderer is None:
            await self._dead(row, f"no callback renderer for dialect {row.dialect!r}")
            return
        if schedule is None:
            await self._dead(row, f"no callback schedule for dialect {row.dialect!r}")
            return
        if is_progress(row.event):
            newer = await self._superseded_by(row)
            if newer is not None:
                await self.repo.outbox_skip(row.id, f"superseded by {newer}")
                log.debug("callback %s (%s of %s) skipped: stale", row.id, row.event, row.task_id)
                return
        task = await self.repo.get_task(row.task_id)
        if task is None:
            await self._dead(row, f"task {row.task_id} no longer exists")
            return
        try:
            rendered = renderer(task, row.event)
            if inspect.isawaitable(rendered):
                rendered = await rendered
            payload, extra = rendered
            body = encode_body(payload)
        except Exception as exc:  # a renderer bug fails the same way on every retry
            log.exception("callback %s: rendering %s for task %s failed", row.id, row.event, row.task_id)
            await self._dead(row, f"rendering failed: {type(exc).__name__}: {exc}")
            return
        timestamp = int(self.clock())
        headers = {k: v for k, v in extra.items() if k.lower() not in _RESERVED_HEADERS}
        headers |= {
            SIGNATURE_HEADER: signature_header(self.secret, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_HEADER: row.event,
            DELIVERY_HEADER: str(row.id),
        }
        result = await post_json(
            row.url,
            body,
            headers,
            self.policy,
            timeout=schedule.timeout,
            https_only=True,
            max_length=MAX_URL_LENGTH,
        )
        if result.ok:
            await self.repo.outbox_result(row.id, delivered=True, error=None, next_attempt_at=None)
            log.info("callback %s (%s of %s) delivered: %s", row.id, row.event, row.task_id, result.status)
            return
        error = f"{result.code}: {result.error}"[:_ERROR_CHARS]
        failures = row.attempts + 1
        delay = None
        if result.code not in PERMANENT_CODES and not is_progress(row.event):
            delay = schedule.delay_after(failures)
        if delay is None:
            await self._dead(row, error)
            return
        next_at = self.clock() + delay
        await self.repo.outbox_result(row.id, delivered=False, error=error, next_attempt_at=next_at)
        if self._next_due is None or next_at < self._next_due:
            self._next_due = next_at
        log.info(
            "callback %s (%s of %s) failed (%s), attempt %d; retry in %g s",
            row.id,
            row.event,
            row.task_id,
            error,
            failures,
            delay,
        )

    async def _dead(self, row: OutboxRow, error: str) -> None:
        await self.repo.outbox_result(
            row.id, delivered=False, error=error[:_ERROR_CHARS], next_attempt_at=None
        )
        log.warning("callback %s (%s of %s) given up: %s", row.id, row.event, row.task_id, error)

    async def _superseded_by(self, row: OutboxRow) -> str | None:
        """The event that makes this progress event stale: one of equal or higher rank that was
        written after it, or that was already sent (midjourney-proxy suppresses updates that do
        not move the status forward; the receiver only cares about the latest state)."""
        rank = event_rank(row.event)
        for other in await self.repo.outbox_for_task(row.task_id):
            if other.id == row.id or other.state == "skipped" or event_rank(other.event) < rank:
                continue
            if other.id > row.id or other.state == "delivered" or other.attempts > 0:
                return other.event
        return None
