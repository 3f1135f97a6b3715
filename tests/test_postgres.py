"""The same service on PostgreSQL: migrations, imagine end to end, and workers that never share a task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fake_engine import FakeEngine
from tests.helpers import pending_task, wait_task
from tests.http_client import HTTP
from tests.live import LiveServer, make_settings
from tests.pg import pg_bin

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.timeout(300),
    pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed"),
]


def test_imagine_end_to_end_on_postgres(tmp_path: Path, pg_url: str) -> None:
    settings = make_settings(tmp_path, database_url=pg_url)
    with LiveServer(settings, FakeEngine()) as server:  # the store is under test, not the model
        key = server.create_key(credits=20)
        client = server.client(key)
        r = client.post(
            "/v1/images/generations", json={"model": "mj-v7", "prompt": "a boat --ar 2:3 --seed 9"}
        )
        assert r.status_code == 200, r.text
        task_id = r.json()["id"]
        body = wait_task(client, task_id, 120)
        assert body["status"] == "completed", body
        assert len(body["results"]) == 4
        assert HTTP.get(body["results"][0]).status_code == 200
        balance = client.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
        assert balance == 20 - body["usage"]["credits_reserved"]


def test_concurrent_claims_never_share_a_task(tmp_path: Path, pg_url: str) -> None:
    """Eight claimers race over 40 pending tasks: FOR UPDATE SKIP LOCKED gives each task to exactly one."""
    from openmj.accounts import create_key
    from openmj.store.db import Database
    from openmj.store.repo import Repository

    async def main() -> list[str]:
        db = Database(pg_url)
        await db.migrate()
        repo = Repository(db)
        key = (await create_key(repo, credits=0)).key
        for _ in range(40):
            task = pending_task(key.id, prompt="x")
            assert await repo.insert_task(task, 20, max_unfinished=None, queue_cap=10**6) == "ok"

        async def claimer(n: int) -> list[str]:
            got = []
            while (t := await repo.claim(f"w{n}", 30)) is not None:
                got.append(t.id)
            return got

        results = await asyncio.gather(*(claimer(n) for n in range(8)))
        await db.dispose()
        return [i for r in results for i in r]

    claimed = asyncio.run(main())
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


@pytest.mark.slow
def test_api_node_and_worker_node_share_postgres(tmp_path: Path, pg_url: str, tiny_dir: Path) -> None:
    """`openmj serve --no-worker` takes the task; a separate `openmj worker` process runs it."""
    import os
    import signal
    import subprocess
    import sys

    data = tmp_path / "shared-data"  # one media folder for both nodes (see docs/deployment.md)
    settings = make_settings(data, database_url=pg_url, run_worker=False)
    with LiveServer(settings, None) as api:
        key = api.create_key(credits=50)
        env = {
            **os.environ,
            "OPENMJ_SECRET_KEY": "test-secret-key",
            "HF_HUB_OFFLINE": "1",
            "OPENMJ_HEARTBEAT_SECONDS": "0.2",
            "OPENMJ_POLL_SECONDS": "0.2",
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openmj.cli",
                "worker",
                "--data-dir",
                str(data),
                "--model",
                str(tiny_dir),
                "--database-url",
                pg_url,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            client = api.client(key)
            task_id = client.post(
                "/v1/images/generations", json={"model": "mj-v7", "prompt": "a mill"}
            ).json()["id"]
            body = wait_task(client, task_id, 180)
            assert body["status"] == "completed", body
            assert HTTP.get(body["results"][0]).status_code == 200
        finally:
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, out[-3000:]
