"""The worker registry's table (core/workers.py): each worker process upserts its row, every
process reads the rows, the reaper deletes those of processes gone silent."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openmj.core.workers import WorkerNode
from openmj.store.db import Database
from openmj.store.models import WorkerNodeRow

NODES = cast(Table, WorkerNodeRow.__table__)


def _values(node: WorkerNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "host": node.host[:255],
        "pid": node.pid,
        "models": list(node.models),
        "operations": sorted(node.operations),
        "workers": node.workers,
        "running": node.running,
        "draining": node.draining,
        "started_at": node.started_at,
        "last_seen": node.last_seen,
    }


def _node(row: Any) -> WorkerNode:
    return WorkerNode(
        id=row.id,
        host=row.host,
        pid=row.pid,
        models=tuple(row.models or ()),
        operations=frozenset(row.operations or ()),
        workers=row.workers,
        running=row.running,
        started_at=row.started_at,
        last_seen=row.last_seen,
        draining=bool(row.draining),
    )


async def announce(db: Database, node: WorkerNode) -> None:
    """Insert or refresh `node`'s row."""
    values = _values(node)
    stmt = (sqlite_insert if db.sqlite else pg_insert)(NODES).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[NODES.c.id], set_={k: v for k, v in values.items() if k != "id"}
    )
    async with db.write_conn() as conn:
        await conn.execute(stmt)


async def withdraw(db: Database, node_id: str) -> None:
    async with db.write_conn() as conn:
        await conn.execute(delete(NODES).where(NODES.c.id == node_id))


async def nodes(db: Database) -> list[WorkerNode]:
    """Every recorded node, live or not (a handful of rows)."""
    async with db.read_conn() as conn:
        return await read_nodes(conn)


async def read_nodes(conn: AsyncConnection) -> list[WorkerNode]:
    rows = (await conn.execute(select(NODES).order_by(NODES.c.started_at))).all()
    return [_node(r) for r in rows]


async def forget_silent(db: Database, before: float) -> int:
    """Delete the nodes last seen before `before`; how many."""
    async with db.write_conn() as conn:
        res = await conn.execute(delete(NODES).where(NODES.c.last_seen < before))
    return int(res.rowcount or 0)
