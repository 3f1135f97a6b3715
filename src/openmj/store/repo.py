"""The repository: every SQL statement of openmj lives here, returning core types.

Rules that must hold under concurrency are single statements here:
- reserving credits is `UPDATE … SET credits = credits - p WHERE credits >= p` (never below zero);
- claiming a task sets status, lease owner and expiry in the transaction that selected it
  (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite write transactions are serial);
- every change of a task that finishes it is conditional on the task not being terminal yet, so a
  late worker, a reaper and a cancel can never both settle the same task.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from openmj.core.accounts import ApiKey
from openmj.core.spec import Spec
from openmj.core.tasks import ImageResult, Operation, Speed, Status, Task
from openmj.core.video import VIDEO_OPERATIONS
from openmj.store.db import Database, KeyChanges
from openmj.store.models import ApiKeyRow, IdempotencyRow, LedgerRow, OutboxRow, TaskRow

UNFINISHED = (Status.PENDING.value, Status.PROCESSING.value)
TERMINAL = tuple(s.value for s in Status if s.terminal)
TASKS = cast(Table, TaskRow.__table__)
KEYS = cast(Table, ApiKeyRow.__table__)
LEDGER = cast(Table, LedgerRow.__table__)
OUTBOX = cast(Table, OutboxRow.__table__)
IDEMPOTENCY = cast(Table, IdempotencyRow.__table__)
# the statements of the hot paths, built once (building an expression costs more than running it)
_TASK_BY_ID = select(TASKS).where(TASKS.c.id == bindparam("task_id"))
_KEY_BY_HASH = select(KEYS).where(KEYS.c.key_hash == bindparam("key_hash"))
_INSERT_TASK = TASKS.insert()
_INSERT_LEDGER = LEDGER.insert()
_INSERT_OUTBOX = OUTBOX.insert()
_KEY_UNFINISHED = select(KEYS.c.unfinished).where(KEYS.c.id == bindparam("owner"))
#: is any delivery due? (the delivery loop asks twice a second; a claim is a write transaction)
_OUTBOX_DUE = (
    select(OUTBOX.c.id)
    .where(
        OUTBOX.c.state == "pending",
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.lease_expires.is_(None), OUTBOX.c.lease_expires < bindparam("now")),
    )
    .limit(1)
)


def _admission(price: bool, counted: bool, limited: bool) -> Any:
    """The key UPDATE of `_admit` for one combination of rules (built once, see `_ADMISSION`)."""
    conds: list[Any] = [KEYS.c.id == bindparam("owner")]
    values: dict[str, Any] = {}
    if price:
        conds.append(KEYS.c.credits >= bindparam("price"))
        values["credits"] = KEYS.c.credits - bindparam("price")
    if counted:
        if limited:
            conds.append(KEYS.c.unfinished < bindparam("max_unfinished"))
        values["unfinished"] = KEYS.c.unfinished + 1
    return update(KEYS).where(*conds).values(**values) if values else None


_ADMISSION = {
    (p, c, m): _admission(p, c, m) for p in (False, True) for c in (False, True) for m in (False, True)
}
IN_CHUNK = 900  # ids per `IN (…)`: under SQLite's oldest limit of 999 bound parameters
QUEUE_SNAPSHOT_SECONDS = 0.5  # how old the queue picture behind estimated_time may be
QUEUE_SNAPSHOT_ROWS = 10_000  # positions beyond this are estimated from the count alone
TASK_CHANNEL = "openmj_tasks"  # PostgreSQL LISTEN/NOTIFY channel: "a task is waiting"
RELAY_CHANNEL = "openmj_relay"  # payload: a relayed task's id, which its upstream called back about


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        group=row.group,
        credits=row.credits,
        models=row.models,
        rpm=row.rpm,
        concurrency=row.concurrency,
        expires_at=row.expires_at,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _key_from_core(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        group=row.group_name,
        credits=row.credits,
        models=row.models,
        rpm=row.rpm,
        concurrency=row.concurrency,
        expires_at=row.expires_at,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _image(d: dict[str, Any]) -> ImageResult:
    return ImageResult(**d)


def _image_dict(img: ImageResult) -> dict[str, Any]:
    return {
        "name": img.name,
        "width": img.width,
        "height": img.height,
        "seed": img.seed,
        "content_type": img.content_type,
        **({"frames": img.frames, "fps": img.fps, "thumbnail": img.thumbnail} if img.frames else {}),
    }


def _task_values(task: Task, priority: int, now: float) -> dict[str, Any]:
    return {
        "id": task.id,
        "owner": task.owner,
        "dialect": task.dialect,
        "operation": task.operation.value,
        "model": task.model,
        "status": task.status.value,
        "progress": task.progress,
        "prompt": task.prompt,
        "spec": task.spec,
        "request": task.request,
        "speed": task.speed.value,
        "priority": priority,
        "seed": task.seed,
        "parent_id": task.parent_id,
        "parent_index": task.parent_index,
        "created_at": task.created_at,
        "updated_at": now,
        "results": [],
        "grid": None,
        "credits_reserved": task.credits_reserved,
        "credits_charged": 0.0,
        "user_group": task.user_group,
        "callback_url": task.callback_url,
        "cancel_requested": False,
        "attempts": 0,
        "deadline": task.deadline,
        "error_code": task.error_code,
        "error_message": task.error_message,
        "finished_at": task.finished_at,
        "media_deleted": False,
        "engine_model": task.engine_model,
        "output": None,
    }


def _outbox_values(task_id: str, dialect: str, url: str, spec: OutboxSpec, now: float) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "dialect": spec.dialect or dialect,
        "url": url,
        "event": spec.event,
        "attempts": 0,
        "next_attempt_at": now,
        "state": "pending",
        "created_at": now,
    }


_OPERATIONS = {o.value: o for o in Operation}  # dict look-ups: Enum(...) is slow in bulk reads
_STATUSES = {s.value: s for s in Status}
_SPEEDS = {s.value: s for s in Speed}


_COL = {c.name: i for i, c in enumerate(TaskRow.__table__.columns)}  # positions in `select(TASKS)`


def core_row_to_task(row: Any) -> Task:
    """A task from a Core row of `select(TASKS)`, by column position (attribute access on Core rows
    costs ~0.7 µs a field, which is most of a 1,000-task bulk read)."""
    v, c = tuple(row), _COL
    results, grid = v[c["results"]], v[c["grid"]]
    return Task(
        id=v[c["id"]],
        owner=v[c["owner"]],
        dialect=v[c["dialect"]],
        operation=_OPERATIONS.get(v[c["operation"]]) or Operation(v[c["operation"]]),
        model=v[c["model"]],
        status=_STATUSES.get(v[c["status"]]) or Status(v[c["status"]]),
        progress=v[c["progress"]],
        prompt=v[c["prompt"]],
        spec=cast(Spec, v[c["spec"]] or {}),
        request=v[c["request"]] or {},
        speed=_SPEEDS.get(v[c["speed"]]) or Speed(v[c["speed"]]),
        seed=int(v[c["seed"]]),
        created_at=v[c["created_at"]],
        parent_id=v[c["parent_id"]],
        parent_index=v[c["parent_index"]],
        started_at=v[c["started_at"]],
        finished_at=v[c["finished_at"]],
        error_code=v[c["error_code"]],
        error_message=v[c["error_message"]],
        results=[ImageResult(**d) for d in results or []],
        grid=ImageResult(**grid) if grid else None,
        credits_reserved=v[c["credits_reserved"]],
        credits_charged=v[c["credits_charged"]],
        user_group=v[c["user_group"]],
        callback_url=v[c["callback_url"]],
        cancel_requested=v[c["cancel_requested"]],
        attempts=v[c["attempts"]],
        media_expires_at=v[c["media_expires_at"]],
        deadline=v[c["deadline"]],
        engine_model=v[c["engine_model"]] or "",
        output=v[c["output"]],
    )


def row_to_task(row: Any) -> Task:
    """A task from an ORM `TaskRow` or a Core row of the tasks table (same attribute names)."""
    return Task(
        id=row.id,
        owner=row.owner,
        dialect=row.dialect,
        operation=_OPERATIONS.get(row.operation) or Operation(row.operation),
        model=row.model,
        status=_STATUSES.get(row.status) or Status(row.status),
        progress=row.progress,
        prompt=row.prompt,
        spec=cast(Spec, row.spec or {}),
        request=row.request or {},
        speed=_SPEEDS.get(row.speed) or Speed(row.speed),
        seed=int(row.seed),
        created_at=row.created_at,
        parent_id=row.parent_id,
        parent_index=row.parent_index,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error_message=row.error_message,
        results=[_image(d) for d in row.results or []],
        grid=_image(row.grid) if row.grid else None,
        credits_reserved=row.credits_reserved,
        credits_charged=row.credits_charged,
        user_group=row.user_group,
        callback_url=row.callback_url,
        cancel_requested=row.cancel_requested,
        attempts=row.attempts,
        media_expires_at=row.media_expires_at,
        deadline=row.deadline,
        engine_model=row.engine_model or "",
        output=row.output,
    )


@dataclass(frozen=True)
class IdempotencyClaim:
    """A create's Idempotency-Key, a fingerprint of its request, and the start of its window."""

    key: str
    fingerprint: str
    since: float


@dataclass(frozen=True)
class QueueSnapshot:
    """The waiting line at one moment: (−priority, created_at) of the first pending tasks, sorted,
    and how many tasks are unfinished in all. Behind estimated_time and the global queue cap, so
    neither counts rows on the hot path."""

    taken_at: float
    pending: list[tuple[int, float]]
    pending_total: int
    unfinished_total: int

    def ahead_of(self, priority: int, created_at: float) -> int:
        n = bisect.bisect_left(self.pending, (-priority, created_at))
        if n == len(self.pending) and self.pending_total > len(self.pending):
            return self.pending_total  # beyond the snapshot's rows: at least that many
        return n


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._snapshot: QueueSnapshot | None = None
        self._snapshot_lock = asyncio.Lock()
        self._admitted_since_snapshot = 0

    # ------------------------------------------------------------------ keys and credits
    async def create_key(
        self,
        *,
        key_id: str,
        key_hash: str,
        prefix: str,
        credits: float,
        name: str = "",
        group: str = "default",
        models: list[str] | None = None,
        rpm: int | None = None,
        concurrency: int | None = None,
        expires_at: float | None = None,
    ) -> ApiKey:
        now = time.time()
        row = ApiKeyRow(
            id=key_id,
            key_hash=key_hash,
            prefix=prefix,
            name=name,
            group=group,
            credits=credits,
            models=models,
            rpm=rpm,
            concurrency=concurrency,
            expires_at=expires_at,
            disabled=False,
            created_at=now,
        )
        async with self.db.write() as s:
            s.add(row)
            if credits:
                s.add(LedgerRow(key_id=key_id, task_id=None, kind="grant", amount=credits, created_at=now))
            await self._notify_key_change(s)
        self.db.key_changes.bump()
        return _key(row)

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        async with self.db.read_conn() as conn:
            row = (await conn.execute(_KEY_BY_HASH, {"key_hash": key_hash})).first()
            return _key_from_core(row) if row else None

    async def key_by_id_or_prefix(self, ref: str) -> ApiKey | None:
        async with self.db.read_session() as s:
            row = (await s.execute(select(ApiKeyRow).where(ApiKeyRow.id == ref))).scalar_one_or_none()
            if row is None:
                rows = (await s.execute(select(ApiKeyRow).where(ApiKeyRow.prefix == ref))).scalars().all()
                row = rows[0] if len(rows) == 1 else None
            return _key(row) if row else None

    async def count_keys(self) -> int:
        async with self.db.read_session() as s:
            return int((await s.execute(select(func.count()).select_from(ApiKeyRow))).scalar_one())

    async def list_keys(self) -> list[ApiKey]:
        async with self.db.read_session() as s:
            rows = (await s.execute(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).scalars().all()
            return [_key(r) for r in rows]

    async def set_disabled(self, key_id: str, disabled: bool) -> bool:
        async with self.db.write() as s:
            res = await s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(disabled=disabled))
            await self._notify_key_change(s)
        self.db.key_changes.bump()
        return _affected(res) == 1

    async def _notify_key_change(self, s: AsyncSession) -> None:
        """Tell every other node (cached key look-ups); delivered when the transaction commits."""
        if not self.db.sqlite:
            await s.execute(text(f"NOTIFY {KeyChanges.CHANNEL}"))

    async def grant(self, key_id: str, amount: float) -> float | None:
        async with self.db.write() as s:
            res = await s.execute(
                update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(credits=ApiKeyRow.credits + amount)
            )
            if _affected(res) != 1:
                return None
            s.add(LedgerRow(key_id=key_id, task_id=None, kind="grant", amount=amount, created_at=time.time()))
            await self._notify_key_change(s)
            balance = float(
                (await s.execute(select(ApiKeyRow.credits).where(ApiKeyRow.id == key_id))).scalar_one()
            )
        self.db.key_changes.bump()
        return balance

    async def ledger_sum(self, key_id: str) -> float:
        async with self.db.read_session() as s:
            total = (
                await s.execute(
                    select(func.coalesce(func.sum(LedgerRow.amount), 0.0)).where(LedgerRow.key_id == key_id)
                )
            ).scalar_one()
            return float(total)

    async def used_credits(self, key_id: str) -> float:
        """Credits spent: reservations not refunded (reserve rows are negative, refunds positive)."""
        async with self.db.read_session() as s:
            total = (
                await s.execute(
                    select(func.coalesce(func.sum(LedgerRow.amount), 0.0)).where(
                        LedgerRow.key_id == key_id, LedgerRow.kind.in_(("reserve", "refund"))
                    )
                )
            ).scalar_one()
            return -float(total)

    # ------------------------------------------------------------------ tasks: submit
    async def insert_task(
        self,
        task: Task,
        priority: int,
        *,
        max_unfinished: int | None,
        queue_cap: int,
        outbox: OutboxSpec | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> str:
        """Reserve credits and insert the task in one transaction.

        Returns "ok", "insufficient_credits", "too_many_tasks", "queue_full" or "duplicate" (the
        key's `Idempotency-Key` already made a task); nothing is written unless it is "ok".
        """
        now = time.time()
        counted = task.status is Status.PENDING  # a task failed at once (a banned prompt) takes no slot
        if counted and await self._queue_full(queue_cap):
            return "queue_full"
        values = _task_values(task, priority, now)
        try:
            async with self.db.write_conn() as conn:
                if idempotency is not None:
                    await self._claim_idempotency(conn, task, idempotency, now)
                # the rows first, the key last: on PostgreSQL the key's row lock (which orders one
                # key's submits) is then held only from its UPDATE to the commit
                await conn.execute(_INSERT_TASK, values)
                if outbox is not None and task.callback_url:
                    row = _outbox_values(task.id, task.dialect, task.callback_url, outbox, now)
                    await conn.execute(_INSERT_OUTBOX, row)
                await self._admit(
                    conn, task.owner, task.id, task.credits_reserved, now, max_unfinished, counted
                )
        except _Refused as refused:
            return refused.reason
        except IntegrityError:
            if idempotency is None:
                raise
            return "duplicate"  # a concurrent create with the same key committed first
        if counted:
            self._admitted_since_snapshot += 1
        return "ok"

    async def _claim_idempotency(self, conn: Any, task: Task, claim: IdempotencyClaim, now: float) -> None:
        """The key's row for this Idempotency-Key, in the task's transaction: a second create with
        it fails on the primary key (PostgreSQL waits for the first to commit), and is rolled back
        whole. A row older than the window is replaced."""
        stale = IDEMPOTENCY.c.created_at < claim.since
        mine = (IDEMPOTENCY.c.owner == task.owner) & (IDEMPOTENCY.c.key == claim.key)
        await conn.execute(delete(IDEMPOTENCY).where(mine & stale))
        row = {"owner": task.owner, "key": claim.key, "task_id": task.id, "fingerprint": claim.fingerprint}
        await conn.execute(IDEMPOTENCY.insert(), {**row, "created_at": now})

    async def idempotent_task(self, owner: str, key: str, since: float) -> tuple[str, str] | None:
        """(task id, request fingerprint) of the task `owner` made with Idempotency-Key `key`
        since `since`."""
        query = select(IDEMPOTENCY.c.task_id, IDEMPOTENCY.c.fingerprint).where(
            IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key, IDEMPOTENCY.c.created_at >= since
        )
        async with self.db.read_session() as s:
            row = (await s.execute(query)).first()
        return None if row is None else (str(row.task_id), str(row.fingerprint))

    async def delete_idempotency_before(self, cutoff: float) -> int:
        async with self.db.write() as s:
            res = await s.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < cutoff))
            return _affected(res)

    async def _queue_full(self, queue_cap: int) -> bool:
        """The global cap, from the queue snapshot (at most QUEUE_SNAPSHOT_SECONDS old) plus what
        this process admitted since: a safety valve, so it may let a few more through, never fewer."""
        snapshot = await self.queue_snapshot()
        return snapshot.unfinished_total + self._admitted_since_snapshot >= queue_cap

    async def _admit(
        self,
        conn: Any,
        owner: str,
        task_id: str,
        price: float,
        now: float,
        max_unfinished: int | None,
        counted: bool,
    ) -> None:
        """The key's limits and the credit reservation, in ONE conditional UPDATE of the key row
        inside the caller's transaction: credits never go below zero and the unfinished count never
        passes the limit, whatever runs concurrently (on PostgreSQL the row lock serialises one
        key's submits; SQLite write transactions are serial)."""
        if price > 0:
            ledger = {
                "key_id": owner,
                "task_id": task_id,
                "kind": "reserve",
                "amount": -price,
                "created_at": now,
            }
            await conn.execute(_INSERT_LEDGER, ledger)  # undone with the rest if the key refuses
        if not self.db.sqlite:
            # wake idle workers on other nodes; PostgreSQL delivers it when this transaction commits
            await conn.execute(text(f"NOTIFY {TASK_CHANNEL}"))
        statement = _ADMISSION[(price > 0, counted, max_unfinished is not None)]
        if statement is not None:
            params = {"owner": owner, "price": price, "max_unfinished": max_unfinished}
            res = await conn.execute(statement, params)
            if _affected(res) != 1:
                # which rule refused it: one read, on the refusal path only
                row = (await conn.execute(_KEY_UNFINISHED, {"owner": owner})).first()
                full = max_unfinished is not None and row is not None and row.unfinished >= max_unfinished
                raise _Refused("too_many_tasks" if counted and full else "insufficient_credits")

    async def _release_slot(self, s: Any, owner: str) -> None:
        """A task of `owner` left pending/processing for good (completed, failed, cancelled)."""
        await s.execute(update(KEYS).where(KEYS.c.id == owner).values(unfinished=KEYS.c.unfinished - 1))

    async def queue_snapshot(self) -> QueueSnapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.taken_at < QUEUE_SNAPSHOT_SECONDS:
            return snapshot
        async with self._snapshot_lock:  # one refresh at a time; the others use its result
            snapshot = self._snapshot
            if snapshot is not None and time.monotonic() - snapshot.taken_at < QUEUE_SNAPSHOT_SECONDS:
                return snapshot
            taken = time.monotonic()
            async with self.db.read_conn() as conn:
                rows = (
                    await conn.execute(
                        select(TASKS.c.priority, TASKS.c.created_at)
                        .where(TASKS.c.status == Status.PENDING.value)
                        .order_by(TASKS.c.priority.desc(), TASKS.c.created_at)
                        .limit(QUEUE_SNAPSHOT_ROWS)
                    )
                ).all()
                counts: dict[str, int] = dict(
                    (
                        await conn.execute(
                            select(TASKS.c.status, func.count())
                            .where(TASKS.c.status.in_(UNFINISHED))
                            .group_by(TASKS.c.status)
                        )
                    ).all()
                )
            self._snapshot = QueueSnapshot(
                taken,
                [(-int(p), float(c)) for p, c in rows],
                int(counts.get(Status.PENDING.value, 0)),
                int(sum(counts.values())),
            )
            self._admitted_since_snapshot = 0
            return self._snapshot

    # ------------------------------------------------------------------ tasks: read
    async def get_task(self, task_id: str) -> Task | None:
        if self.db.loop_reader is not None:  # SQLite: on the loop (what a status poll costs)
            # locked past the loop's short wait (a WAL recovery): read off the loop, below
            with contextlib.suppress(OperationalError), self.db.read_now() as sync:
                row = sync.execute(_TASK_BY_ID, {"task_id": task_id}).first()
                return core_row_to_task(row) if row else None
        async with self.db.read_conn() as conn:
            row = (await conn.execute(_TASK_BY_ID, {"task_id": task_id})).first()
        return core_row_to_task(row) if row else None

    async def get_tasks(self, ids: Sequence[str], owner: str | None = None) -> list[Task]:
        if not ids:
            return []
        out: dict[str, Task] = {}
        async with self.db.read_conn() as conn:
            for chunk_start in range(0, len(ids), IN_CHUNK):
                chunk = list(ids[chunk_start : chunk_start + IN_CHUNK])
                # by primary key only: with `owner = ?` in the WHERE, SQLite may walk the owner's
                # index (every task of the key) instead; the owner is checked here
                for row in await conn.execute(select(TASKS).where(TASKS.c.id.in_(chunk))):
                    task = core_row_to_task(row)
                    if owner is None or task.owner == owner:
                        out[task.id] = task
        return [out[i] for i in ids if i in out]

    async def list_tasks(
        self,
        owner: str,
        *,
        status: str | None = None,
        statuses: Sequence[str] | None = None,
        operation: str | None = None,
        video: bool | None = None,
        model: str | None = None,
        limit: int = 20,
        offset: int = 0,
        oldest_first: bool = False,
    ) -> tuple[list[Task], int]:
        conds = [TaskRow.owner == owner]
        if status:
            conds.append(TaskRow.status == status)
        if statuses:
            conds.append(TaskRow.status.in_(list(statuses)))
        if operation:
            conds.append(TaskRow.operation == operation)
        if video is not None:
            kinds = [op.value for op in VIDEO_OPERATIONS]
            conds.append(TaskRow.operation.in_(kinds) if video else TaskRow.operation.not_in(kinds))
        if model:
            conds.append(TaskRow.model == model)
        return await task_page(self.db, conds, limit=limit, offset=offset, oldest_first=oldest_first)

    async def queue_position(self, task: Task) -> int:
        """Pending tasks that will be claimed before this (pending) one, from the queue snapshot."""
        snapshot = await self.queue_snapshot()
        return snapshot.ahead_of(task.speed.priority, task.created_at)  # the priority it was queued with

    async def average_duration(self, operation: str, limit: int = 20) -> float | None:
        """Mean run time of the latest completed tasks of an operation (for estimated_time)."""
        async with self.db.read_session() as s:
            rows = (
                (
                    await s.execute(
                        select(TaskRow.finished_at - TaskRow.started_at)
                        .where(
                            TaskRow.operation == operation,
                            TaskRow.status == Status.COMPLETED.value,
                            TaskRow.started_at.is_not(None),
                        )
                        .order_by(TaskRow.finished_at.desc())
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            vals = [float(v) for v in rows if v is not None]
            return sum(vals) / len(vals) if vals else None

    # ------------------------------------------------------------------ tasks: queue
    async def claim(
        self,
        worker_id: str,
        lease_seconds: float,
        models: Sequence[str] | None = None,
        operations: Sequence[str] | None = None,
    ) -> Task | None:
        """The next pending task, of `models` only when given (tasks of no model: any worker), and
        of `operations` only when given (a worker without a video model leaves video tasks)."""
        now = time.time()
        async with self.db.write() as s:
            q = select(TaskRow).where(TaskRow.status == Status.PENDING.value)
            if models is not None:
                q = q.where(TaskRow.engine_model.in_([*models, ""]))
            if operations is not None:
                q = q.where(TaskRow.operation.in_(operations))
            q = (
                q.order_by(TaskRow.priority.desc(), TaskRow.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            row = (await s.execute(q)).scalar_one_or_none()
            if row is None:
                return None
            row.status = Status.PROCESSING.value
            row.lease_owner = worker_id
            row.lease_expires = now + lease_seconds
            row.attempts += 1
            row.started_at = row.started_at or now
            row.updated_at = now
            await s.flush()
            return row_to_task(row)

    async def heartbeat(
        self, task_id: str, worker_id: str, lease_seconds: float, progress: int | None
    ) -> bool | None:
        """Extend the lease and store progress. Returns cancel_requested, or None if the lease was lost."""
        now = time.time()
        values: dict[str, Any] = {"lease_expires": now + lease_seconds, "updated_at": now}
        if progress is not None:
            values["progress"] = progress
        # one Core statement (the running task's sampler shares this process: every statement
        # is a trip to the driver's thread and back)
        async with self.db.write_conn() as conn:
            row = (
                await conn.execute(
                    update(TASKS)
                    .where(
                        TASKS.c.id == task_id,
                        TASKS.c.lease_owner == worker_id,
                        TASKS.c.status == Status.PROCESSING.value,
                    )
                    .values(**values)
                    .returning(TASKS.c.cancel_requested)
                )
            ).first()
            return None if row is None else bool(row[0])

    async def complete(
        self,
        task_id: str,
        worker_id: str,
        results: Iterable[ImageResult],
        grid: ImageResult | None,
        media_expires_at: float,
        outbox: OutboxSpec | None,
        output: dict[str, Any] | None = None,
    ) -> bool:
        now = time.time()
        async with self.db.write() as s:
            row = await s.get(TaskRow, task_id, with_for_update=True)
            if row is None or row.status != Status.PROCESSING.value or row.lease_owner != worker_id:
                return False
            await self._release_slot(s, row.owner)
            row.status = Status.COMPLETED.value
            row.progress = 100
            row.results = [_image_dict(r) for r in results]
            row.grid = _image_dict(grid) if grid else None
            row.output = output
            row.finished_at = now
            row.updated_at = now
            row.lease_owner = None
            row.lease_expires = None
            row.credits_charged = row.credits_reserved  # capture: the reservation becomes the charge
            row.media_expires_at = media_expires_at
            self._add_outbox(s, row, outbox, now)
            return True

    async def save_output(self, task_id: str, worker_id: str, output: dict[str, Any]) -> bool:
        """A running task's checkpoint (the relay's upstream task id), kept if the worker dies."""
        async with self.db.write() as s:
            row = await s.get(TaskRow, task_id, with_for_update=True)
            if row is None or row.status != Status.PROCESSING.value or row.lease_owner != worker_id:
                return False
            row.output = output or None
            row.updated_at = time.time()
            return True

    async def finish_unsuccessfully(
        self,
        task_id: str,
        status: Status,
        code: str,
        message: str,
        *,
        refund: bool,
        outbox: OutboxSpec | None,
        worker_id: str | None = None,
        allowed_from: tuple[str, ...] = UNFINISHED,
    ) -> Task | None:
        """Fail or cancel a task that is not terminal yet; refund its reservation if asked."""
        now = time.time()
        async with self.db.write() as s:
            row = await s.get(TaskRow, task_id, with_for_update=True)
            if row is None or row.status not in allowed_from:
                return None
            if worker_id is not None and row.lease_owner != worker_id:
                return None
            if row.status in UNFINISHED:  # a MODAL task never took a slot
                await self._release_slot(s, row.owner)
            row.status = status.value
            row.error_code = code
            row.error_message = message
            row.finished_at = now
            row.updated_at = now
            row.lease_owner = None
            row.lease_expires = None
            if refund and row.credits_reserved > 0:
                await s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == row.owner)
                    .values(credits=ApiKeyRow.credits + row.credits_reserved)
                )
                s.add(
                    LedgerRow(
                        key_id=row.owner,
                        task_id=row.id,
                        kind="refund",
                        amount=row.credits_reserved,
                        created_at=now,
                    )
                )
                row.credits_charged = 0.0
            else:
                row.credits_charged = row.credits_reserved
            self._add_outbox(s, row, outbox, now)
            await s.flush()
            return row_to_task(row)

    async def request_cancel(self, task_id: str) -> None:
        async with self.db.write() as s:
            await s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == Status.PROCESSING.value)
                .values(cancel_requested=True, updated_at=time.time())
            )

    async def expired_leases(self, now: float) -> list[Task]:
        async with self.db.read_session() as s:
            rows = (
                await s.execute(
                    select(TaskRow).where(
                        TaskRow.status == Status.PROCESSING.value, TaskRow.lease_expires < now
                    )
                )
            ).scalars()
            return [row_to_task(r) for r in rows]

    async def listen(self, channels: Mapping[str, Callable[[str], None]], stop: asyncio.Event) -> None:
        """PostgreSQL only: call `channels[name](payload)` whenever any node notifies `name` (until
        `stop`)."""
        if self.db.sqlite:
            return
        async with self.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection  # asyncpg.Connection
            assert driver is not None
            # asyncpg calls a listener with (connection, pid, channel, payload)
            listeners = {name: (lambda *a, fn=fn: fn(a[3])) for name, fn in channels.items()}
            for name, listener in listeners.items():
                await driver.add_listener(name, listener)
            try:
                await stop.wait()
            finally:
                for name, listener in listeners.items():
                    await driver.remove_listener(name, listener)

    async def listen_for_tasks(self, on_task: Callable[[], None], stop: asyncio.Event) -> None:
        await self.listen({TASK_CHANNEL: lambda _payload: on_task()}, stop)

    async def notify_relay(self, task_id: str) -> None:
        """Tell every node that `task_id`'s upstream called back (PostgreSQL; one node has no one
        else to tell)."""
        if self.db.sqlite:
            return
        async with self.db.engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_notify(:channel, :task_id)"), {"channel": RELAY_CHANNEL, "task_id": task_id}
            )
            await conn.commit()

    async def requeue(self, task_id: str) -> bool:
        """Return a processing task whose worker died to the queue (progress restarts)."""
        now = time.time()
        async with self.db.write() as s:
            res = await s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == task_id,
                    TaskRow.status == Status.PROCESSING.value,
                    TaskRow.lease_expires < now,
                )
                .values(
                    status=Status.PENDING.value,
                    lease_owner=None,
                    lease_expires=None,
                    progress=0,
                    updated_at=now,
                )
            )
            return _affected(res) == 1

    async def release(self, task_id: str, worker_id: str) -> bool:
        """A worker shutting down hands its task back to the queue (not counted as an attempt)."""
        async with self.db.write() as s:
            res = await s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == task_id,
                    TaskRow.lease_owner == worker_id,
                    TaskRow.status == Status.PROCESSING.value,
                )
                .values(
                    status=Status.PENDING.value,
                    lease_owner=None,
                    lease_expires=None,
                    progress=0,
                    attempts=TaskRow.attempts - 1,
                    updated_at=time.time(),
                )
            )
            return _affected(res) == 1

    async def status_counts(self) -> dict[str, int]:
        async with self.db.read_session() as s:
            rows = (await s.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status))).all()
            return {str(st): int(n) for st, n in rows}

    async def overdue(self, now: float) -> list[Task]:
        async with self.db.read_session() as s:
            rows = (
                await s.execute(select(TaskRow).where(TaskRow.status.in_(UNFINISHED), TaskRow.deadline < now))
            ).scalars()
            return [row_to_task(r) for r in rows]

    async def record_progress_event(self, task_id: str, outbox: OutboxSpec) -> None:
        async with self.db.write() as s:
            row = await s.get(TaskRow, task_id)
            if row is not None:
                self._add_outbox(s, row, outbox, time.time())

    # ------------------------------------------------------------------ media expiry
    async def expired_media(self, now: float, limit: int = 200) -> list[str]:
        async with self.db.read_session() as s:
            rows = (
                await s.execute(
                    select(TaskRow.id)
                    .where(TaskRow.media_deleted.is_(False), TaskRow.media_expires_at < now)
                    .limit(limit)
                )
            ).scalars()
            return list(rows)

    async def mark_media_deleted(self, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        async with self.db.write() as s:
            await s.execute(update(TaskRow).where(TaskRow.id.in_(list(task_ids))).values(media_deleted=True))

    # ------------------------------------------------------------------ retention
    async def delete_finished_before(self, cutoff: float, batch: int = 500) -> list[str]:
        """Delete up to `batch` finished tasks that ended before `cutoff` (and their pending
        callbacks), in one short transaction; returns their ids. The ledger is kept: it is the
        history of every key's balance."""
        async with self.db.write_conn() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    select(TASKS.c.id)
                    .where(TASKS.c.finished_at < cutoff, TASKS.c.status.in_(TERMINAL))
                    .order_by(TASKS.c.finished_at)
                    .limit(batch)
                )
            ]
            if ids:
                await conn.execute(OUTBOX.delete().where(OUTBOX.c.task_id.in_(ids)))
                await conn.execute(TASKS.delete().where(TASKS.c.id.in_(ids)))
        return ids

    # ------------------------------------------------------------------ outbox
    @staticmethod
    def _add_outbox(s: AsyncSession, row: TaskRow, spec: OutboxSpec | None, now: float) -> None:
        if spec is None or not row.callback_url:
            return
        s.add(
            OutboxRow(
                task_id=row.id,
                dialect=spec.dialect or row.dialect,
                url=row.callback_url,
                event=spec.event,
                attempts=0,
                next_attempt_at=now,
                state="pending",
                created_at=now,
            )
        )

    async def due_outbox(self, now: float, lease_seconds: float, limit: int = 20) -> list[OutboxRow]:
        """Claim due deliveries (a lease, so two delivery loops never send the same row at once)."""
        if self.db.loop_reader is not None:  # SQLite: nothing due (the usual answer) costs no write
            with contextlib.suppress(OperationalError), self.db.read_now() as sync:  # locked: claim
                if sync.execute(_OUTBOX_DUE, {"now": now}).first() is None:
                    return []
        async with self.db.write() as s:
            rows = list(
                (
                    await s.execute(
                        select(OutboxRow)
                        .where(
                            OutboxRow.state == "pending",
                            OutboxRow.next_attempt_at <= now,
                            or_(OutboxRow.lease_expires.is_(None), OutboxRow.lease_expires < now),
                        )
                        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            for r in rows:
                r.lease_expires = now + lease_seconds
            await s.flush()
            for r in rows:
                s.expunge(r)
            return rows

    async def outbox_result(
        self, outbox_id: int, *, delivered: bool, error: str | None, next_attempt_at: float | None
    ) -> None:
        async with self.db.write() as s:
            row = await s.get(OutboxRow, outbox_id)
            if row is None:
                return
            row.attempts += 1
            row.last_error = error
            row.lease_expires = None
            if delivered:
                row.state = "delivered"
            elif next_attempt_at is None:
                row.state = "dead"
            else:
                row.next_attempt_at = next_attempt_at

    async def outbox_for_task(self, task_id: str) -> list[OutboxRow]:
        async with self.db.read_session() as s:
            rows = (
                (
                    await s.execute(
                        select(OutboxRow).where(OutboxRow.task_id == task_id).order_by(OutboxRow.id)
                    )
                )
                .scalars()
                .all()
            )
            return list(rows)

    # ---- callbacks (owned by callbacks.py)
    async def outbox_skip(self, outbox_id: int, reason: str) -> None:
        """Settle a pending delivery that will not be sent (a stale progress event): state
        "skipped", not counted as an attempt, so it is neither delivered nor dead."""
        async with self.db.write() as s:
            await s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outbox_id, OutboxRow.state == "pending")
                .values(state="skipped", last_error=reason, lease_expires=None)
            )

    # ---- modal (midjourney-proxy)
    async def activate_modal(
        self,
        task_id: str,
        owner: str,
        *,
        prompt: str,
        spec: Spec,
        request: dict[str, Any],
        seed: int,
        price: float,
        priority: int,
        deadline: float,
        max_unfinished: int | None,
        queue_cap: int,
    ) -> str:
        """Turn a MODAL task into a pending one: the same limits and credit reservation as
        `insert_task`, in one transaction. Returns "ok", "not_modal", "insufficient_credits",
        "too_many_tasks" or "queue_full"; nothing is written unless it is "ok"."""
        if await self._queue_full(queue_cap):
            return "queue_full"
        now = time.time()
        try:
            async with self.db.write() as s:
                row = await s.get(TaskRow, task_id, with_for_update=True)
                if row is None or row.owner != owner or row.status != Status.MODAL.value:
                    raise _Refused("not_modal")
                await self._admit(s, owner, task_id, price, now, max_unfinished, True)
                row.status = Status.PENDING.value
                row.prompt = prompt
                row.spec = dict(spec)
                row.request = request
                row.seed = seed
                row.priority = priority
                row.credits_reserved = price
                row.deadline = deadline
                row.progress = 0
                # queued from now: an old modal must not jump ahead of tasks submitted meanwhile
                row.created_at = now
                row.updated_at = now
        except _Refused as refused:
            return refused.reason
        return "ok"


async def task_page(
    db: Database, conds: Sequence[Any], *, limit: int, offset: int, oldest_first: bool = False
) -> tuple[list[Task], int]:
    """One page of the tasks matching `conds` (newest first unless `oldest_first`) and their total."""
    newest = (TaskRow.created_at.desc(), TaskRow.id.desc())
    order = (TaskRow.created_at, TaskRow.id) if oldest_first else newest
    async with db.read_session() as s:
        total = int((await s.execute(select(func.count()).select_from(TaskRow).where(*conds))).scalar_one())
        query = select(TaskRow).where(*conds).order_by(*order).limit(limit).offset(offset)
        rows = (await s.execute(query)).scalars()
        return [row_to_task(r) for r in rows], total


def _affected(result: Any) -> int:
    """Rows an UPDATE or DELETE matched (a CursorResult's rowcount; `execute` is typed Result)."""
    return int(cast(CursorResult[Any], result).rowcount)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True)
class OutboxSpec:
    """A callback to queue with a status change: which event, rendered in which dialect."""

    event: str
    dialect: str | None = None
