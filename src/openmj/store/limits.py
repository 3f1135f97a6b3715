"""The shared side of per-key rate limits (accounts.SharedRateLimiter): a counter per key and
calendar minute that every API node takes quota from, in one short transaction."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openmj.store.db import Database
from openmj.store.models import RateCountRow

COUNTS = cast(Table, RateCountRow.__table__)


async def take_quota(db: Database, key_id: str, minute: int, limit: int, want: int) -> int:
    """Grant up to `want` of `key_id`'s `limit` requests in `minute`; the units granted (0: none
    left). The row is locked from its read to the commit, so nodes never grant more than `limit`."""
    insert = sqlite_insert if db.sqlite else pg_insert
    async with db.write_conn() as conn:
        await conn.execute(
            insert(COUNTS).values(key_id=key_id, minute=minute, used=0).on_conflict_do_nothing()
        )
        query = select(COUNTS.c.used).where(COUNTS.c.key_id == key_id, COUNTS.c.minute == minute)
        used = int((await conn.execute(query if db.sqlite else query.with_for_update())).scalar_one())
        grant = max(0, min(want, limit - used))
        if grant:
            await conn.execute(
                update(COUNTS)
                .where(COUNTS.c.key_id == key_id, COUNTS.c.minute == minute)
                .values(used=COUNTS.c.used + grant)
            )
        return grant


async def forget_before(db: Database, minute: int) -> None:
    async with db.write_conn() as conn:
        await conn.execute(delete(COUNTS).where(COUNTS.c.minute < minute))
