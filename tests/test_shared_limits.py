"""Per-key rate limits for the deployment (accounts.SharedRateLimiter): two API nodes on one
PostgreSQL grant a key its rpm together, not each."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from openmj.accounts import SharedRateLimiter
from openmj.core.tasks import TaskError
from openmj.store.db import Database
from tests.live import LiveServer, make_settings
from tests.pg import pg_bin

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed")


def test_a_keys_rpm_holds_across_two_api_nodes(tmp_path: Path, pg_url: str) -> None:
    a_settings = make_settings(tmp_path / "a", database_url=pg_url, run_worker=False)
    b_settings = make_settings(tmp_path / "b", database_url=pg_url, run_worker=False)
    with LiveServer(a_settings, None) as a, LiveServer(b_settings, None) as b:
        # the counter is per calendar minute: a sequence that straddles two minutes is made again
        # with a new key (the clock decides only whether to retry, never the assertion)
        for _ in range(3):
            key = a.create_key(credits=100, rpm=3)
            minute = int(time.time() // 60)
            with a.client(key) as ca, b.client(key) as cb:
                answers = [c.get("/v1/credits") for c in (ca, cb, ca, cb, ca)]
            if int(time.time() // 60) == minute:
                break
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
        refused = answers[3].json()["error"]
        assert refused["code"] == "rate_limit_exceeded" and "3 per minute" in refused["message"]
        assert 1 <= int(answers[3].headers["retry-after"]) <= 60


def test_nodes_take_quota_in_blocks_and_never_grant_more_than_the_limit(pg_url: str) -> None:
    clock = [600.0]  # a fake clock: minute 10, 0 s in

    async def main() -> tuple[int, int, bool]:
        db = Database(pg_url)
        try:
            await db.migrate()
            nodes = [SharedRateLimiter(db, clock=lambda: clock[0]) for _ in range(2)]
            granted = refused = 0
            for i in range(130):  # a key with rpm 100 (blocks of 2), alternating between nodes
                try:
                    await nodes[i % 2].take("key_blocks", 100)
                    granted += 1
                except TaskError as exc:
                    assert exc.http_status == 429 and exc.retry_after == 60
                    refused += 1
            clock[0] += 60  # the next minute starts afresh
            await nodes[0].take("key_blocks", 100)
            return granted, refused, True
        finally:
            await db.dispose()

    granted, refused, next_minute = asyncio.run(main())
    # a block of 2 may be held unspent by a node when the counter runs out: never more than 100
    assert 98 <= granted <= 100 and granted + refused == 130 and next_minute
