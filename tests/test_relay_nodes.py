"""Gateways beyond one process (docs/relay.md): provider health shared by the nodes of one
PostgreSQL, and a gateway killed (SIGKILL) while a real openmj upstream holds its task."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmj.core.tasks import Status
from tests.fake_engine import FakeEngine
from tests.helpers import stored
from tests.http_client import HTTP
from tests.live import LiveServer, ServerProcess, make_settings, wait_until
from tests.relaying import Scripted, gateway, imagine, ledger_matches, provider, tasks_of, toml

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeEngine, str]]:
    engine = FakeEngine()
    with LiveServer(make_settings(tmp_path_factory.mktemp("up")), engine) as up:
        yield up, engine, up.create_key(credits=100_000)


@pytest.mark.parametrize("mode", ["429", "401"])
def test_a_provider_one_node_saw_failing_is_left_alone_by_the_next(
    tmp_path: Path, pg_url: str, upstream: tuple[LiveServer, FakeEngine, str], mode: str
) -> None:
    """Node A meets a 429 with Retry-After: 60 (or a refused key: out for 300 s) and fails over;
    node B, another process's worth of state on the same PostgreSQL, never asks that provider."""
    up, _, up_key = upstream
    with Scripted(mode) as bad:
        providers = [
            provider("bad", "mjproxy", bad.url(""), priority=10),
            provider("good", "kie", up.url, up_key),
        ]
        with gateway(tmp_path / "a", providers, database_url=pg_url) as a:
            key = a.create_key(credits=100)
            done = imagine(a, key)
            assert done["status"] == "completed", done
            assert stored(a, done["id"]).output["upstream"]["provider"] == "good"  # type: ignore[index]
            assert len(bad.hits("/mj/submit/imagine")) == 1
        # node A's workers are gone: node B alone runs the next task, knowing nothing of its own
        with gateway(tmp_path / "b", providers, database_url=pg_url, admin_token="op") as b:
            assert b.runtime.engine.health._failures == {}
            # the operator sees it on any node: the admin view's providers
            listed = HTTP.get(f"{b.url}/admin/api/providers", headers={"Authorization": "Bearer op"}).json()
            bad_row = next(p for p in listed["providers"] if p["name"] == "bad")
            assert bad_row["coolingUntil"] > time.time() and mode in bad_row["coolingReason"], bad_row
            done = imagine(b, key)
            assert done["status"] == "completed", done
            assert stored(b, done["id"]).output["upstream"]["provider"] == "good"  # type: ignore[index]
            assert len(bad.hits("/mj/submit/imagine")) == 1  # not asked again, by any node
            # `providers check` shows what the nodes share; a refused key it finds accepted now
            # (this upstream refuses only imagine) is put back in service for every node
            check = [sys.executable, "-m", "openmj.cli", "providers", "check", "--database-url", pg_url,
                     "--providers", str(tmp_path / "b" / "providers.toml")]  # fmt: skip
            out = subprocess.run(
                check, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
            )
            row = next(line for line in out.stdout.splitlines() if "bad" in line)
            if mode == "401":
                assert "ended: the key is accepted" in row, out.stdout
                assert imagine(b, key)["status"] == "completed"
                assert len(bad.hits("/mj/submit/imagine")) == 2  # asked again, and refused again
            else:
                assert "s more" in row and "429" in row, out.stdout  # a Retry-After is kept
            ledger_matches(b, key)


def test_a_gateway_killed_mid_task_resumes_at_a_real_upstream_without_sending_it_again(
    tmp_path: Path, upstream: tuple[LiveServer, FakeEngine, str]
) -> None:
    up, engine, up_key = upstream
    path = tmp_path / "providers.toml"
    path.write_text(toml([provider("up", "mjproxy", up.url, up_key)]))
    gw = ServerProcess(
        tmp_path / "gw", "tiny", args=("--providers", str(path)), OPENMJ_LEASE_SECONDS="2"
    ).start()
    db = tmp_path / "gw" / "openmj.db"

    def read(query: str, *args: str) -> list[tuple[object, ...]]:
        """The gateway's own SQLite, read-only (what it wrote, as it wrote it)."""
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return list(conn.execute(query, args).fetchall())

    def checkpointed(task_id: str) -> str | None:
        """The upstream id the gateway wrote to its task before it waits on it."""
        rows = read("SELECT output FROM tasks WHERE id = ?", task_id)
        note = (json.loads(str(rows[0][0])) if rows and rows[0][0] else None) or {}
        return (note.get("upstream") or {}).get("task_id")

    try:
        created = subprocess.run(
            [sys.executable, "-m", "openmj.cli", "keys", "create", "--data-dir", str(gw.data_dir),
             "--credits", "50"],
            env=gw.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {created.stdout.split()[-1]}"}
        before = {t.id for t in tasks_of(up, up_key)}
        with engine.held():  # the upstream holds the task unfinished until the gateway is back
            task_id = HTTP.post(
                f"{gw.url}/v1/images/generations",
                json={"model": "mj-v7", "prompt": "a fox in the snow"},
                headers=headers,
                timeout=30,
            ).json()["id"]
            theirs = wait_until(lambda: checkpointed(task_id), 60, what="the upstream id checkpointed")
            gw.kill()
            gw.start()
        done = wait_until(
            lambda: (
                (t := HTTP.get(f"{gw.url}/v1/tasks/{task_id}", headers=headers, timeout=10).json())
                and t["status"] in ("completed", "failed")
                and t
            ),
            120,
            what=f"task {task_id} after the restart",
        )
        assert done["status"] == "completed" and len(done["results"]) == 4, done
        sent = [t.id for t in tasks_of(up, up_key) if t.id not in before]
        assert sent == [theirs]  # sent once: the task resumed is the one sent before the kill
        assert stored(up, theirs).status is Status.COMPLETED
        remaining = HTTP.get(f"{gw.url}/v1/credits", headers=headers, timeout=10).json()
        assert remaining["data"]["token"]["remaining_credits"] == 42  # charged once
        keys = read(
            "SELECT credits, (SELECT SUM(amount) FROM ledger l WHERE l.key_id = k.id) FROM api_keys k"
        )
        assert (42, 42) in keys and all(balance == ledger for balance, ledger in keys), keys
    finally:
        gw.kill()
