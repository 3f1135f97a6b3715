"""A worker claims only the tasks of the models it has loaded (issue 14): tasks routed to another
model wait for their own worker, older tasks without a model go to anyone, priority still rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openmj.accounts import create_key
from openmj.core.tasks import Operation, Task
from openmj.store.db import Database, migrate_sync
from openmj.store.repo import Repository
from tests.helpers import pending_task


def _task(owner: str, model: str, created: float) -> Task:
    return pending_task(owner, created_at=created, credits_reserved=1.0, engine_model=model)


def test_workers_claim_only_their_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    migrate_sync(url)

    async def scenario() -> None:
        db = Database(url)
        repo = Repository(db)
        key = (await create_key(repo, credits=100)).key
        now = 1_700_000_000.0  # fixed ages: only their order matters
        klein, zimage, legacy = (
            _task(key.id, "flux2-klein-4b", now),
            _task(key.id, "z-image-turbo", now + 1),
            _task(key.id, "", now + 2),
        )
        for t in (klein, zimage, legacy):
            assert await repo.insert_task(t, 20, max_unfinished=None, queue_cap=10**6) == "ok"
        got = await repo.claim("w-z", 30, ["z-image-turbo"])
        assert got is not None and got.id == zimage.id and got.engine_model == "z-image-turbo"
        got = await repo.claim("w-z", 30, ["z-image-turbo"])
        assert got is not None and got.id == legacy.id  # a task of no model: any worker
        assert await repo.claim("w-z", 30, ["z-image-turbo"]) is None  # klein's task is not its
        got = await repo.claim("w-k", 30, ["flux2-klein-4b", "sdxl-lightning"])
        assert got is not None and got.id == klein.id
        stored = await repo.get_task(klein.id)
        assert stored is not None and stored.engine_model == "flux2-klein-4b"
        await db.dispose()

    asyncio.run(scenario())


def test_workers_claim_only_the_operations_they_run(tmp_path: Path) -> None:
    """A worker without a video model leaves video tasks to one that has it (issue 18)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    migrate_sync(url)

    async def scenario() -> None:
        db = Database(url)
        repo = Repository(db)
        key = (await create_key(repo, credits=100)).key
        now = 1_700_000_000.0
        video = _task(key.id, "tiny", now)
        video.operation = Operation.VIDEO
        image = _task(key.id, "tiny", now + 1)
        for t in (video, image):
            assert await repo.insert_task(t, 20, max_unfinished=None, queue_cap=10**6) == "ok"
        stills = [op.value for op in Operation if op is not Operation.VIDEO]
        got = await repo.claim("w-stills", 30, ["tiny"], stills)
        assert got is not None and got.id == image.id  # the older video task is passed over
        assert await repo.claim("w-stills", 30, ["tiny"], stills) is None
        got = await repo.claim("w-all", 30, ["tiny"], None)
        assert got is not None and got.id == video.id
        await db.dispose()

    asyncio.run(scenario())
