"""Database engines and migrations.

SQLite (the embedded default) runs in WAL mode. Write transactions start with BEGIN IMMEDIATE so
two writers never deadlock on a read-to-write upgrade (a plain BEGIN would fail with SQLITE_BUSY
without waiting); reads use a second engine with plain deferred transactions so they never queue
behind writers. PostgreSQL uses one engine for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # the CLI may write while a server runs; wait rather than fail


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, immediate: bool) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see "begin" hook)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # a row written before the strict reader (a lone surrogate)
        return json.loads(text)


def _json_dumps(value: Any) -> str:
    from openmj.jsonwire import dumps  # the writer that never fails on a string

    return dumps(value).decode()


JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}


def _make_engine(url: str, *, immediate: bool) -> AsyncEngine:
    if not is_sqlite(url):
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **JSON_CODEC)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **JSON_CODEC)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_conn, immediate)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


#: a read on the event loop waits at most this long for a lock (WAL readers almost never wait:
#: only while another connection recovers the WAL index after a crash)
SQLITE_LOOP_READ_TIMEOUT_MS = 1000


def _sync_sqlite_reader(url: str) -> Engine:
    """A synchronous read-only engine on the same SQLite file, for point reads made on the event
    loop itself: a read by primary key takes tens of microseconds in SQLite, while the async
    driver moves each statement (and the BEGIN, and the pool's rollback) to its thread and back."""
    engine = create_engine(
        make_url(url).set(drivername="sqlite"), connect_args={"check_same_thread": False}, **JSON_CODEC
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit: each SELECT reads the latest committed state
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_LOOP_READ_TIMEOUT_MS}")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    return engine


class Database:
    """The write engine, a read engine (the same on PostgreSQL) and their session factories."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            path = make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = _make_engine(url, immediate=True)
        self.read_engine = _make_engine(url, immediate=False) if self.sqlite else self.engine
        path = make_url(url).database if self.sqlite else None
        # SQLite on a file: point reads on the loop, without a thread hop (`read_now`)
        self.loop_reader = _sync_sqlite_reader(url) if path and path != ":memory:" else None
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_session = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite has one writer at a time: queueing this process's writers here, in order, instead
        # of in SQLite's busy handler (which sleeps and retries) cut the p99 of task creation ~10×
        self._write_lock = asyncio.Lock() if self.sqlite else None
        self.key_changes = KeyChanges(make_url(url).database if self.sqlite else None)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on an exception."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self.session.begin())
            yield session

    @contextlib.asynccontextmanager
    async def write_conn(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a Core connection (no ORM session): the hot paths use these."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            conn = await stack.enter_async_context(self.engine.begin())
            yield conn

    @contextlib.asynccontextmanager
    async def read_conn(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def read_now(self) -> Iterator[Connection]:
        """A connection for one small read made right here, on the event loop (SQLite files
        only: see `loop_reader`). For reads by primary key: the loop does nothing else meanwhile."""
        assert self.loop_reader is not None
        with self.loop_reader.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        await asyncio.to_thread(migrate_sync, self.url)

    async def revision(self) -> str | None:
        """The schema's migration revision (None: never migrated); any failure to reach the
        database raises."""
        async with self.read_engine.connect() as conn:
            try:
                return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            except ProgrammingError:  # PostgreSQL: no such table
                return None
            except OperationalError as exc:  # SQLite says "no such table" this way
                if "no such table" in str(exc):
                    return None
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self.loop_reader is not None:
            self.loop_reader.dispose()


class KeyChanges:
    """How every process learns at once that a key changed (disabled, granted credits, regrouped),
    so key look-ups can be cached: `generation()` changes whenever any process calls `bump()`.

    SQLite (one machine): a small file next to the database, replaced on every change; `generation`
    is its identity (a stat call). PostgreSQL: a counter this process increments on its own changes
    and on every `openmj_keys` notification from other nodes (`Repository.listen_for_changes`).
    """

    CHANNEL = "openmj_keys"

    def __init__(self, sqlite_path: str | None) -> None:
        self.path = Path(f"{sqlite_path}-keys") if sqlite_path and sqlite_path != ":memory:" else None
        self._counter = 0

    def generation(self) -> tuple[int, ...]:
        if self.path is None:
            return (self._counter,)
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (self._counter, 0)
        return (self._counter, st.st_ino, st.st_mtime_ns, st.st_size)

    def bump(self) -> None:
        self._counter += 1
        if self.path is not None:
            tmp = self.path.with_name(f"{self.path.name}.{secrets.token_hex(4)}")
            tmp.write_text(secrets.token_hex(8))
            os.replace(tmp, self.path)  # a new inode: every process sees a new generation

    def remote_change(self, *_: Any) -> None:
        self._counter += 1


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest migration this code knows; a database at another revision is not ready for it."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def migrate_sync(url: str) -> None:
    """Apply every migration (alembic runs its own event loop, so call this off the main loop)."""
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
