"""Read-only rows for `openmj usage`: the relayed tasks of a period (relay/usage.py sums them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openmj.store.models import TaskRow
from openmj.store.repo import Repository


@dataclass(frozen=True)
class RelayedRow:
    status: str
    operation: str
    credits_charged: float
    output: dict[str, Any] | None


async def relayed_since(repo: Repository, since: float, engine_model: str) -> list[RelayedRow]:
    # an operator's report, not a hot path: one indexed range read of the period, streamed
    query = select(TaskRow.status, TaskRow.operation, TaskRow.credits_charged, TaskRow.output).where(
        TaskRow.created_at >= since, TaskRow.engine_model == engine_model
    )
    async with repo.db.read_session() as s:
        rows = await s.stream(query)
        return [
            RelayedRow(r.status, r.operation, float(r.credits_charged or 0), r.output) async for r in rows
        ]
