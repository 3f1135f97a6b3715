"""Read-only aggregates behind /metrics: what the database knows, so every node reports the same.

Each query is an aggregate over an index (docs/metrics.md): the queue and unfinished tasks over
the status indexes (unfinished rows only), latency and recently finished tasks over
`ix_tasks_finished` (a window only), callbacks over `ix_outbox_due` (state). Two totals would grow
with the tables, so each node keeps them and reads only what is new: the ledger (append-only) past
a watermark on its primary key, and finished tasks (never changed once finished) past a
`finished_at` watermark, recounted in full at most once per TERMINAL_RECOUNT_SECONDS so that
tasks deleted by retention leave the count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from openmj.core.tasks import Status
from openmj.core.workers import WorkerNode, live
from openmj.store.db import Database
from openmj.store.registry import read_nodes
from openmj.store.repo import LEDGER, OUTBOX, TASKS, UNFINISHED

# seconds; a local model takes ~1 s (GPU) to minutes (CPU), a queue can wait much longer
LATENCY_BUCKETS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
# a row only joins the kept totals once older than this: a transaction that wrote an older
# stamp or a lower id may still be committing (PostgreSQL hands out ids before commit)
SETTLE_SECONDS = 120.0
TERMINAL_RECOUNT_SECONDS = 60.0  # the full count of finished tasks (one covering-index scan)
TERMINAL = tuple(s.value for s in Status if s.terminal)
OPEN = tuple(s.value for s in Status if not s.terminal)  # pending, processing, modal
FAR_FUTURE = 10 * 365 * 86400.0  # the window's upper bound, for the query planner only
LATENCIES = ("total", "queue_wait", "run")  # submit→finish, submit→first claim, first claim→finish

HistogramKey = tuple[str, str, str]  # operation, model, status


@dataclass
class Histogram:
    """Cumulative counts per bucket of LATENCY_BUCKETS (the last one is +Inf), and the sum."""

    buckets: list[int]
    total: float


@dataclass
class Stats:
    tasks: dict[tuple[str, str], int]  # (operation, status) → count
    queue: dict[str, int]  # speed → pending tasks
    oldest_pending: dict[str, float]  # speed → age in seconds of its oldest pending task
    busy_workers: int  # distinct lease owners of processing tasks, on every node
    latency: dict[str, dict[HistogramKey, Histogram]]  # LATENCIES name → histograms
    callbacks: dict[str, int]  # outbox state → rows
    ledger: dict[str, float]  # ledger kind → sum of amounts (reserve is negative)
    ledger_rows: dict[str, int]  # ledger kind → rows
    held: float  # credits reserved by pending and processing tasks
    window_seconds: float
    nodes: list[WorkerNode] = field(default_factory=list)  # live worker processes (the registry)


@dataclass
class _LedgerTotals:
    """The settled part of the ledger: sums per kind of every row with id <= mark."""

    mark: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, kinds: Sequence[Any]) -> None:
        for kind, total, n in kinds:
            self.sums[kind] = self.sums.get(kind, 0.0) + float(total or 0.0)
            self.rows[kind] = self.rows.get(kind, 0) + int(n)


@dataclass
class _FinishedCounts:
    """Finished tasks by (operation, status) with finished_at <= cut, counted at `counted_at`."""

    cut: float
    counts: dict[tuple[str, str], int]
    counted_at: float


class StatsReader:
    """Reads a `Stats` in one consistent snapshot of the database."""

    def __init__(
        self,
        db: Database,
        window_seconds: float = 3600.0,
        settle_seconds: float = SETTLE_SECONDS,
        worker_ttl: float = 45.0,
    ) -> None:
        self.db = db
        self.worker_ttl = worker_ttl
        self.window_seconds = window_seconds
        self.settle_seconds = settle_seconds
        self._ledger = _LedgerTotals()
        self._finished: _FinishedCounts | None = None
        self._lock = asyncio.Lock()  # the ledger watermark moves under one reader at a time

    async def read(self) -> Stats:
        async with self._lock, self.db.read_engine.connect() as conn:
            if not self.db.sqlite:  # one snapshot for every query (SQLite's read transaction is one)
                await conn.execution_options(isolation_level="REPEATABLE READ")
            now = time.time()
            ledger, ledger_rows, held = await self._credits(conn, now)
            queue, oldest = await self._queue(conn, now)
            return Stats(
                tasks=await self._tasks(conn, now),
                queue=queue,
                oldest_pending=oldest,
                busy_workers=await self._busy_workers(conn),
                latency=await self._latency(conn, now - self.window_seconds),
                callbacks=await self._callbacks(conn),
                ledger=ledger,
                ledger_rows=ledger_rows,
                held=held,
                window_seconds=self.window_seconds,
                nodes=live(await read_nodes(conn), now, self.worker_ttl),
            )

    async def _tasks(self, conn: AsyncConnection, now: float) -> dict[tuple[str, str], int]:
        """Unfinished tasks counted now; finished ones from the kept count plus those finished
        since its cut (a finished task never changes again; only retention deletes it)."""
        by = (TASKS.c.operation, TASKS.c.status)
        kept = self._finished
        if kept is None or now - kept.counted_at >= TERMINAL_RECOUNT_SECONDS:
            cut = now - self.settle_seconds
            q = (
                select(*by, func.count())
                .where(TASKS.c.status.in_(TERMINAL), TASKS.c.finished_at <= cut)
                .group_by(TASKS.c.status, TASKS.c.operation)
            )
            kept = _FinishedCounts(cut, {(str(o), str(s)): int(n) for o, s, n in await conn.execute(q)}, now)
            self._finished = kept
        counts = dict(kept.counts)
        # on ix_tasks_finished's range (a status condition would make SQLite walk every finished
        # row of ix_tasks_done_recent instead); only finished tasks have a finished_at
        recent = (
            select(*by, func.count())
            .where(TASKS.c.finished_at > kept.cut, TASKS.c.finished_at < kept.cut + FAR_FUTURE)
            .group_by(*by)
        )
        unfinished = select(*by, func.count()).where(TASKS.c.status.in_(OPEN)).group_by(*by)
        for q, statuses in ((recent, TERMINAL), (unfinished, OPEN)):
            for op, st, n in await conn.execute(q):
                if st in statuses:
                    counts[(str(op), str(st))] = counts.get((str(op), str(st)), 0) + int(n)
        return counts

    @staticmethod
    async def _queue(conn: AsyncConnection, now: float) -> tuple[dict[str, int], dict[str, float]]:
        q = (
            select(TASKS.c.speed, func.count(), func.min(TASKS.c.created_at))
            .where(TASKS.c.status == Status.PENDING.value)
            .group_by(TASKS.c.speed)
        )
        rows = (await conn.execute(q)).all()
        return (
            {str(speed): int(n) for speed, n, _ in rows},
            {str(speed): max(0.0, now - float(oldest)) for speed, _, oldest in rows},
        )

    @staticmethod
    async def _busy_workers(conn: AsyncConnection) -> int:
        q = select(func.count(func.distinct(TASKS.c.lease_owner))).where(
            TASKS.c.status == Status.PROCESSING.value
        )
        return int((await conn.execute(q)).scalar_one())

    @staticmethod
    async def _latency(conn: AsyncConnection, since: float) -> dict[str, dict[HistogramKey, Histogram]]:
        """Histograms of the tasks finished since `since`, bucketed in SQL: one row per
        (operation, model, status), whatever the number of tasks."""
        created, started, finished = TASKS.c.created_at, TASKS.c.started_at, TASKS.c.finished_at
        has_started = started.is_not(None)
        spans: dict[str, tuple[ColumnElement[Any], ColumnElement[bool] | None]] = {
            "total": (finished - created, None),
            "queue_wait": (started - created, has_started),
            "run": (finished - started, has_started),
        }
        model = func.coalesce(func.nullif(TASKS.c.engine_model, ""), TASKS.c.model)
        columns: list[ColumnElement[Any]] = []
        for span, only in spans.values():
            for bound in LATENCY_BUCKETS:
                cond = span <= bound if only is None else and_(only, span <= bound)
                columns.append(func.sum(case((cond, 1), else_=0)))
            columns.append(func.sum(case((only, span), else_=0.0)) if only is not None else func.sum(span))
            columns.append(func.count() if only is None else func.count(started))
        q = (
            select(TASKS.c.operation, model, TASKS.c.status, *columns)
            # bounded on both sides: with a one-sided range SQLite (no statistics) would rather
            # scan all of ix_tasks_done_recent than read the window's part of ix_tasks_finished
            .where(finished >= since, finished < since + FAR_FUTURE)
            .group_by(TASKS.c.operation, model, TASKS.c.status)
        )
        out: dict[str, dict[HistogramKey, Histogram]] = {name: {} for name in spans}
        width = len(LATENCY_BUCKETS) + 2
        for row in await conn.execute(q):
            key = (str(row[0]), str(row[1]), str(row[2]))
            for i, name in enumerate(spans):
                values = row[3 + i * width : 3 + (i + 1) * width]
                count = int(values[-1] or 0)
                if count:
                    buckets = [int(v or 0) for v in values[: len(LATENCY_BUCKETS)]] + [count]
                    out[name][key] = Histogram(buckets, float(values[-2] or 0.0))
        return out

    @staticmethod
    async def _callbacks(conn: AsyncConnection) -> dict[str, int]:
        q = select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)
        return {str(state): int(n) for state, n in await conn.execute(q)}

    async def _credits(
        self, conn: AsyncConnection, now: float
    ) -> tuple[dict[str, float], dict[str, int], float]:
        """The ledger's sums per kind (kept totals + the rows past the watermark) and the credits
        still held by unfinished tasks."""
        totals = self._ledger
        settled = (
            await conn.execute(
                select(func.max(LEDGER.c.id)).where(
                    LEDGER.c.id > totals.mark, LEDGER.c.created_at < now - self.settle_seconds
                )
            )
        ).scalar_one()
        by_kind = select(LEDGER.c.kind, func.sum(LEDGER.c.amount), func.count()).group_by(LEDGER.c.kind)
        if settled is not None:
            span = and_(LEDGER.c.id > totals.mark, LEDGER.c.id <= int(settled))
            totals.add((await conn.execute(by_kind.where(span))).all())
            totals.mark = int(settled)
        tail = _LedgerTotals(sums=dict(totals.sums), rows=dict(totals.rows))
        tail.add((await conn.execute(by_kind.where(LEDGER.c.id > totals.mark))).all())
        held = (
            await conn.execute(
                select(func.coalesce(func.sum(TASKS.c.credits_reserved), 0.0)).where(
                    TASKS.c.status.in_(UNFINISHED)
                )
            )
        ).scalar_one()
        return tail.sums, tail.rows, float(held)
