"""Read-only queries for the studio's gallery and the admin view (repo.py holds the write paths).

Nothing here changes a row, except `update_key_limits`: the admin view's edit of an existing key's
group, model access and limits, which bumps the key cache like every other key change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select, text, update

from openmj.core.accounts import ApiKey
from openmj.core.tasks import Status, Task
from openmj.store.db import Database, KeyChanges
from openmj.store.models import ApiKeyRow, LedgerRow, TaskRow
from openmj.store.repo import Repository, task_page

TASKS = cast(Table, TaskRow.__table__)
LIKE_ESCAPE = "\\"


def like_pattern(words: str) -> str:
    """`%words%` with the LIKE wildcards of the user's text escaped (a search for 50% is literal)."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    task_id: str | None
    kind: str
    amount: float
    created_at: float


@dataclass(frozen=True)
class QueueState:
    """The whole queue as an operator sees it."""

    pending_by_priority: dict[int, int]
    processing: int
    failed: int
    counts: dict[str, int]


class Browser:
    """The read side the studio and the admin view need, on the shared database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def search_tasks(
        self, owner: str | None, query: str = "", *, limit: int = 20, offset: int = 0, status: str = ""
    ) -> tuple[list[Task], int]:
        """Newest first; `query` matches the prompt (case-insensitive); `owner` None = every key."""
        conds: list[Any] = []
        if owner is not None:
            conds.append(TaskRow.owner == owner)
        if query.strip():
            conds.append(func.lower(TaskRow.prompt).like(like_pattern(query.strip().lower()), escape="\\"))
        if status:
            conds.append(TaskRow.status == status)
        return await task_page(self.db, conds, limit=limit, offset=offset)

    async def children(self, parent_ids: Sequence[str], owner: str | None) -> dict[str, list[str]]:
        """{parent id: ids of the tasks made from it, oldest first} for the given parents."""
        if not parent_ids:
            return {}
        conds: list[Any] = [TaskRow.parent_id.in_(list(parent_ids))]
        if owner is not None:
            conds.append(TaskRow.owner == owner)
        out: dict[str, list[str]] = {p: [] for p in parent_ids}
        async with self.db.read_session() as s:
            rows = await s.execute(
                select(TaskRow.parent_id, TaskRow.id).where(*conds).order_by(TaskRow.created_at)
            )
            for parent, child in rows:
                out[str(parent)].append(child)
        return out

    async def ledger(self, key_id: str, *, limit: int = 100, offset: int = 0) -> list[LedgerEntry]:
        """A key's ledger entries, newest first."""
        async with self.db.read_session() as s:
            rows = (
                await s.execute(
                    select(LedgerRow)
                    .where(LedgerRow.key_id == key_id)
                    .order_by(LedgerRow.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).scalars()
            return [LedgerEntry(r.id, r.task_id, r.kind, r.amount, r.created_at) for r in rows]

    async def queue_state(self) -> QueueState:
        async with self.db.read_conn() as conn:
            pending: dict[Any, Any] = dict(
                (
                    await conn.execute(
                        select(TASKS.c.priority, func.count())
                        .where(TASKS.c.status == Status.PENDING.value)
                        .group_by(TASKS.c.priority)
                    )
                ).all()
            )
            counts: dict[Any, Any] = dict(
                (await conn.execute(select(TASKS.c.status, func.count()).group_by(TASKS.c.status))).all()
            )
        return QueueState(
            pending_by_priority={int(p): int(n) for p, n in pending.items()},
            processing=int(counts.get(Status.PROCESSING.value, 0)),
            failed=int(counts.get(Status.FAILED.value, 0)),
            counts={str(k): int(v) for k, v in counts.items()},
        )


async def update_key_limits(db: Database, key_id: str, changes: dict[str, Any]) -> ApiKey | None:
    """Set a key's group, models (None = every model), rpm and concurrency (None = the defaults).
    `changes` holds only the fields to change; None when there is no such key."""
    allowed = {"group", "models", "rpm", "concurrency", "name"}
    values = {k: v for k, v in changes.items() if k in allowed}
    async with db.write() as s:
        if values:
            await s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(**values))
            if not db.sqlite:  # every other node drops its cached key look-ups
                await s.execute(text(f"NOTIFY {KeyChanges.CHANNEL}"))
    db.key_changes.bump()
    return await Repository(db).key_by_id_or_prefix(key_id)
