"""The shared side of relay provider health (relay/health.py): the providers cooling down, one row
each, that every gateway node reads before it routes a task and writes when one fails."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openmj.store.db import Database
from openmj.store.models import ProviderHealthRow

HEALTH = cast(Table, ProviderHealthRow.__table__)


async def cooling(db: Database, now: float) -> dict[str, tuple[float, str]]:
    """The providers cooling down at `now`: until when, and why."""
    query = select(HEALTH.c.provider, HEALTH.c.until, HEALTH.c.reason).where(HEALTH.c.until > now)
    async with db.read_conn() as conn:
        return {str(r.provider): (float(r.until), str(r.reason)) for r in await conn.execute(query)}


async def cool(db: Database, provider: str, until: float, reason: str) -> None:
    """Cool `provider` until `until`, or longer if a node already has it cooling longer."""
    insert = (sqlite_insert if db.sqlite else pg_insert)(HEALTH)
    statement = insert.values(provider=provider, until=until, reason=reason[:200]).on_conflict_do_update(
        index_elements=[HEALTH.c.provider],
        set_={"until": insert.excluded.until, "reason": insert.excluded.reason},
        where=HEALTH.c.until < insert.excluded.until,
    )
    async with db.write_conn() as conn:
        await conn.execute(statement)


async def clear(db: Database, provider: str) -> None:
    async with db.write_conn() as conn:
        await conn.execute(delete(HEALTH).where(HEALTH.c.provider == provider))
