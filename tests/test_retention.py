"""The retention job (issue 12): finished tasks past the configured age are deleted in small
batches, with their pending callbacks and files; unfinished and recent tasks and the ledger stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import text

from openmj.accounts import create_key
from openmj.config import Settings
from openmj.core.tasks import Status, Task
from openmj.media.storage import MediaStore
from openmj.queue import Reaper
from openmj.store.db import Database, migrate_sync
from openmj.store.repo import OutboxSpec, Repository
from openmj.wakeup import Wakeup
from tests.helpers import pending_task

DAY = 86400.0


def _task(owner: str, price: float = 2.0) -> Task:
    return pending_task(owner, callback_url="https://example.com/cb", credits_reserved=price)


def test_old_finished_tasks_go_in_batches_and_the_rest_stays(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    migrate_sync(url)
    settings = Settings(data_dir=tmp_path, task_retention_days=30)
    media = MediaStore(tmp_path / "media")

    async def scenario() -> None:
        db = Database(url)
        repo = Repository(db)
        key = (await create_key(repo, credits=100)).key
        tasks = [_task(key.id) for _ in range(7)]
        for t in tasks:
            assert await repo.insert_task(t, 20, max_unfinished=None, queue_cap=10**6) == "ok"
        old, recent, running = tasks[:5], tasks[5], tasks[6]
        for t in [*old, recent]:
            done = await repo.finish_unsuccessfully(
                t.id, Status.FAILED, "generation_failed", "x", refund=True, outbox=OutboxSpec("failed")
            )
            assert done is not None
        media.save_image(old[0].id, "0.png", Image.new("RGB", (8, 8)), 1)
        async with db.write() as s:  # the old ones finished 31 days ago
            for t in old:
                await s.execute(
                    text("UPDATE tasks SET finished_at = :f WHERE id = :id"),
                    {"f": time.time() - 31 * DAY, "id": t.id},
                )
        balance_before = await repo.ledger_sum(key.id)

        reaper = Reaper(repo, media, settings, Wakeup())
        assert await reaper.delete_old_tasks(time.time(), batch=2) == 5  # three batches: 2, 2, 1
        for t in old:
            assert await repo.get_task(t.id) is None
            assert await repo.outbox_for_task(t.id) == []
        gone = media.path(old[0].id, "0.png")
        assert gone is not None and not gone.exists()
        kept_recent, kept_running = await repo.get_task(recent.id), await repo.get_task(running.id)
        assert kept_recent is not None and kept_recent.status is Status.FAILED
        assert kept_running is not None and kept_running.status is Status.PENDING
        assert await repo.outbox_for_task(recent.id) != []
        assert await repo.ledger_sum(key.id) == balance_before  # the ledger is history: kept whole
        assert await reaper.delete_old_tasks(time.time(), batch=2) == 0
        await db.dispose()

    asyncio.run(scenario())


def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    migrate_sync(url)

    async def scenario() -> None:
        db = Database(url)
        repo = Repository(db)
        key = (await create_key(repo, credits=10)).key
        t = _task(key.id, price=0)
        await repo.insert_task(t, 20, max_unfinished=None, queue_cap=10**6)
        await repo.finish_unsuccessfully(t.id, Status.FAILED, "x", "x", refund=True, outbox=None)
        reaper = Reaper(
            repo, MediaStore(tmp_path / "m"), Settings(data_dir=tmp_path, task_retention_days=0), Wakeup()
        )
        assert await reaper.delete_old_tasks(time.time() + 10_000 * DAY) == 0
        assert await repo.get_task(t.id) is not None
        await db.dispose()

    asyncio.run(scenario())
