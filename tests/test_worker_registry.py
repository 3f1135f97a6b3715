"""Issue 18: the worker registry. Worker processes record what they serve; API nodes learn from
it which models are served, show no `estimated_time` for a task no live worker serves (it fails at
its time-out, refunded), and forget a worker that went silent (SIGKILL) after its TTL."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from openmj.store import registry
from tests.fake_worker import FakeWorkerProcess
from tests.helpers import balance, create, stored, wait_task
from tests.live import LiveServer, make_settings, wait_until

pytestmark = pytest.mark.timeout(300)

FAST_REGISTRY = {"OPENMJ_REGISTRY_SECONDS": "0.3", "OPENMJ_WORKER_TTL_SECONDS": "2"}


ADMIN = "admin-token-for-tests"


def api_node(data: Path, pg_url: str, **overrides: object) -> LiveServer:
    """`openmj serve --no-worker` in-process, reading the registry with a 2 s TTL."""
    settings = make_settings(
        data,
        database_url=pg_url,
        run_worker=False,
        registry_seconds=0.3,
        worker_ttl_seconds=2.0,
        metrics_cache_seconds=0.0,
        admin_token=ADMIN,
        **overrides,
    )
    return LiveServer(settings, None)


def gauge(client: httpx.Client, name: str, label: str) -> float | None:
    """The value of `name{label}` in /metrics, or None when the series is absent."""
    text = client.get("/metrics").text
    found = re.search(rf"^{name}\{{{re.escape(label)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def test_the_api_learns_which_models_are_served_and_forgets_a_killed_worker(
    tmp_path: Path, pg_url: str
) -> None:
    data = tmp_path / "shared"
    with api_node(data, pg_url) as api:
        client = api.client(api.create_key(credits=100))
        assert gauge(client, "openmj_model_worker_nodes", 'model="tiny"') == 0
        first = create(client, "a quiet harbour")
        assert first["status"] == "pending"
        assert "estimated_time" not in first["task_info"]  # no worker serves tiny: unknown, not a guess

        worker = FakeWorkerProcess(data, pg_url, **FAST_REGISTRY).start()
        try:
            assert wait_task(client, first["id"])["status"] == "completed"
            nodes = api.call(registry.nodes(api.runtime.db))
            assert [(n.models, n.pid, n.draining) for n in nodes] == [(("tiny",), worker.proc.pid, False)]
            assert "imagine" in nodes[0].operations and "video" in nodes[0].operations
            assert gauge(client, "openmj_model_worker_nodes", 'model="tiny"') == 1
            assert gauge(client, "openmj_worker_nodes", 'state="serving"') == 1
            admin = client.get("/admin/api/workers", headers={"Authorization": f"Bearer {ADMIN}"}).json()
            assert [(w["pid"], w["models"], w["draining"]) for w in admin["workers"]] == [
                (worker.proc.pid, ["tiny"], False)
            ]
            with api.client() as anonymous:  # /readyz does not depend on workers: an API node serves anyway
                assert anonymous.get("/readyz").status_code == 200
        finally:
            worker.kill()  # SIGKILL: its row stays behind, and ages out

        wait_until(
            lambda: gauge(client, "openmj_model_worker_nodes", 'model="tiny"') == 0, 60, 0.1, "the TTL"
        )
        second = create(client, "an empty pier")
        assert "estimated_time" not in second["task_info"]
        # the reapers delete the row too (the API node's own reaper here)
        wait_until(lambda: api.call(registry.nodes(api.runtime.db)) == [], 60, 0.1, "the row to go")


def test_a_task_for_a_model_nobody_serves_waits_then_times_out_refunded(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "shared"
    with api_node(data, pg_url, task_timeout_seconds=3.0) as api:
        client = api.client(api.create_key(credits=100))
        # a worker for another model: alive, claiming, but never this task
        worker = FakeWorkerProcess(data, pg_url, model="sd15-lcm", **FAST_REGISTRY).start()
        try:
            wait_until(lambda: gauge(client, "openmj_model_worker_nodes", 'model="sd15-lcm"') == 1)
            assert gauge(client, "openmj_model_worker_nodes", 'model="tiny"') == 0
            created = create(client, "a lighthouse")
            assert "estimated_time" not in created["task_info"]
            assert balance(client) == 100 - created["usage"]["credits_reserved"]
            done = wait_task(client, created["id"], 60)
        finally:
            assert worker.stop() == 0
        assert done["status"] == "failed"
        assert stored(api, created["id"]).error_code == "generation_timeout"
        assert stored(api, created["id"]).attempts == 0  # never claimed
        assert done["usage"]["credits_used"] == 0
        assert balance(client) == 100
        owner = stored(api, created["id"]).owner
        assert api.call(api.runtime.repo.ledger_sum(owner)) == 100


def test_an_embedded_server_registers_its_own_workers_and_estimates(
    fake_server: LiveServer,
) -> None:
    client = fake_server.client(fake_server.create_key(credits=100))
    nodes = fake_server.call(registry.nodes(fake_server.runtime.db))
    assert len(nodes) == 1 and nodes[0].models == ("tiny",) and nodes[0].workers == 1
    with fake_server.runtime.engine.held():  # the task stays pending behind a held engine job
        blocker = create(client, "a first one")
        wait_until(lambda: client.get(f"/v1/tasks/{blocker['id']}").json()["status"] == "processing")
        waiting = client.get(f"/v1/tasks/{create(client, 'a second one')['id']}").json()
        assert waiting["status"] == "pending"
        assert waiting["task_info"]["estimated_time"] > 0
