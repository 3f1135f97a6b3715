"""Issue 12, the engine path: what the server does while a job runs, counted, never timed.

On a small machine the sampler shares the CPU (and, in the embedded server, the interpreter) with
everything else the process does meanwhile: the status polls the client sends at its own pace,
the heartbeat, the delivery loop. bench/bench_engine.py measured each of them; these tests pin
the fixes by counting database statements (which engine ran them, and how many), so a change
that brings a thread hop or a write transaction back fails here whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.helpers import pending_task
from tests.live import LiveServer
from tests.pg import pg_bin

TASK_BY_ID = "WHERE tasks.id = ?"


@contextlib.contextmanager
def statements(live: LiveServer) -> Iterator[dict[str, list[str]]]:
    """The SQL the server runs meanwhile, by engine: `write` and `read` (the async engines, whose
    every statement is a trip to aiosqlite's thread and back; both also under `driver`) and
    `loop` (the synchronous reader)."""
    db = live.runtime.db
    seen: dict[str, list[str]] = {"driver": [], "write": [], "read": [], "loop": []}
    engines = [
        ("write", db.engine.sync_engine),
        ("read", db.read_engine.sync_engine),
        ("loop", db.loop_reader),
    ]

    def recorder(kind: str) -> Any:
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen[kind].append(" ".join(statement.split()))
            if kind != "loop":
                seen["driver"].append(seen[kind][-1])

        return record

    hooks = [(engine, recorder(kind)) for kind, engine in engines]
    for engine, hook in hooks:
        event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        for engine, hook in hooks:
            event.remove(engine, "before_cursor_execute", hook)


@pytest.fixture(scope="module")
def key(api_server: LiveServer) -> str:
    return api_server.create_key(credits=1000)


@pytest.fixture(scope="module")
def client(api_server: LiveServer, key: str) -> Iterator[httpx.Client]:
    with api_server.client(key) as c:
        yield c


def submit(client: httpx.Client) -> str:
    r = client.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a lighthouse --seed 1"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_a_status_poll_reads_the_task_on_the_loop_not_through_the_driver_thread(
    api_server: LiveServer, client: httpx.Client
) -> None:
    task_id = submit(client)
    assert api_server.runtime.db.loop_reader is not None  # SQLite on a file
    with statements(api_server) as seen:
        for _ in range(20):
            r = client.get(f"/v1/tasks/{task_id}")
            assert r.status_code == 200 and r.json()["id"] == task_id
    assert len([s for s in seen["loop"] if TASK_BY_ID in s]) == 20
    assert [s for s in seen["driver"] if TASK_BY_ID in s] == []
    # another key's task is still a 404, and an unknown id too
    assert client.get("/v1/tasks/task-unified-1-nosuchid").status_code == 404


def test_the_delivery_loop_opens_no_write_transaction_when_nothing_is_due(api_server: LiveServer) -> None:
    repo = api_server.runtime.repo

    async def passes() -> list[Any]:
        return [await repo.due_outbox(time.time(), 30.0) for _ in range(10)]

    with statements(api_server) as seen:
        assert api_server.call(passes()) == [[]] * 10
    assert [s for s in seen["driver"] if "outbox" in s] == []  # no BEGIN IMMEDIATE, no claim
    assert len([s for s in seen["loop"] if "FROM outbox" in s]) >= 10


def test_a_heartbeat_is_one_statement_and_still_reports_cancel_and_a_lost_lease(
    api_server: LiveServer, client: httpx.Client
) -> None:
    submit(client)
    repo = api_server.runtime.repo
    # this server runs no worker: claim the task as one would
    task = api_server.call(repo.claim("bench-worker", 30.0, ["tiny"]))
    assert task is not None
    with statements(api_server) as seen:
        assert api_server.call(repo.heartbeat(task.id, "bench-worker", 30.0, 40)) is False
    # the write engine only: the reaper's reads may run meanwhile on the read engine
    work = [s for s in seen["write"] if not s.startswith("BEGIN")]
    assert len(work) == 1 and work[0].startswith("UPDATE tasks") and "RETURNING" in work[0], work
    assert api_server.call(repo.get_task(task.id)).progress == 40
    assert client.post(f"/v1/tasks/{task.id}/cancel").status_code in (200, 202)
    assert api_server.call(repo.heartbeat(task.id, "bench-worker", 30.0, None)) is True
    assert api_server.call(repo.heartbeat(task.id, "another-worker", 30.0, None)) is None


@pytest.mark.postgres
@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed")
def test_the_one_statement_heartbeat_on_postgres(pg_url: str) -> None:
    """UPDATE ... RETURNING on asyncpg too: progress stored, cancel reported, a lost lease None."""
    from openmj.accounts import create_key
    from openmj.store.db import Database
    from openmj.store.repo import Repository

    async def main() -> list[Any]:
        db = Database(pg_url)
        await db.migrate()
        repo = Repository(db)
        try:
            key = (await create_key(repo, credits=10)).key
            task = pending_task(key.id, prompt="x")
            assert await repo.insert_task(task, 1, max_unfinished=None, queue_cap=10**6) == "ok"
            claimed = await repo.claim("w1", 30)
            assert claimed is not None and claimed.id == task.id
            out: list[Any] = [await repo.heartbeat(task.id, "w1", 30, 25)]
            out.append((await repo.get_task(task.id)).progress)  # type: ignore[union-attr]
            await repo.request_cancel(task.id)
            out.append(await repo.heartbeat(task.id, "w1", 30, None))
            out.append(await repo.heartbeat(task.id, "w2", 30, None))
            return out
        finally:
            await db.dispose()

    assert asyncio.run(main()) == [False, 25, True, None]
