"""The baseline: a bare FastAPI app that authenticates a hashed key, then does one SQLite insert
(POST) or one primary-key read (GET).

Same stack as openmj (FastAPI, uvicorn, SQLAlchemy async, aiosqlite, WAL, synchronous=NORMAL),
no validation, no rules. Run: python bench/bare_app.py DB_PATH PORT [KEY]
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
import uuid
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import Column, Float, String, Text, event, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Row(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "rows"
    id = Column(String(64), primary_key=True)
    body = Column(Text)
    created_at = Column(Float)


def build(db_path: str, key: str = "sk-bench") -> FastAPI:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
    key_hash = hashlib.sha256(key.encode()).hexdigest()

    def authenticate(request: Request) -> None:
        secret = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if hashlib.sha256(secret.encode()).hexdigest() != key_hash:
            raise HTTPException(401)

    @event.listens_for(engine.sync_engine, "connect")
    def _wal(conn, _rec):  # type: ignore[no-untyped-def]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as c:
            await c.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/rows")
    async def create(request: Request) -> dict[str, str]:
        authenticate(request)
        body = await request.body()
        rid = uuid.uuid4().hex
        async with engine.begin() as c:
            await c.execute(insert(Row).values(id=rid, body=body.decode(), created_at=time.time()))
        return {"id": rid}

    @app.get("/rows/{rid}")
    async def read(request: Request, rid: str) -> dict[str, object]:
        authenticate(request)
        async with engine.connect() as c:
            row = (await c.execute(select(Row).where(Row.id == rid))).first()
        return {"id": rid, "found": row is not None}

    return app


def build_pg(dsn: str, key: str = "sk-bench") -> FastAPI:
    """The PostgreSQL baseline: FastAPI + an asyncpg pool, the same two routes."""
    import asyncpg

    key_hash = hashlib.sha256(key.encode()).hexdigest()
    pool: dict[str, asyncpg.Pool] = {}

    def authenticate(request: Request) -> None:
        secret = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if hashlib.sha256(secret.encode()).hexdigest() != key_hash:
            raise HTTPException(401)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool["p"] = await asyncpg.create_pool(dsn, min_size=4, max_size=20)
        await pool["p"].execute(
            "CREATE TABLE IF NOT EXISTS bare_rows "
            "(id text PRIMARY KEY, body text, created_at double precision)"
        )
        yield
        await pool["p"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/rows")
    async def create(request: Request) -> dict[str, str]:
        authenticate(request)
        body = await request.body()
        rid = uuid.uuid4().hex
        await pool["p"].execute("INSERT INTO bare_rows VALUES ($1, $2, $3)", rid, body.decode(), time.time())
        return {"id": rid}

    @app.get("/rows/{rid}")
    async def read(request: Request, rid: str) -> dict[str, object]:
        authenticate(request)
        row = await pool["p"].fetchrow("SELECT * FROM bare_rows WHERE id = $1", rid)
        return {"id": rid, "found": row is not None}

    return app


if __name__ == "__main__":
    key = sys.argv[3] if len(sys.argv) > 3 else "sk-bench"
    target = sys.argv[1]
    app = build_pg(target, key) if target.startswith("postgresql://") else build(target, key)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
