"""Issue 18: graceful drain. On SIGTERM a worker claims nothing new, finishes its running task
within `OPENMJ_DRAIN_SECONDS` or hands it back to the queue (not counted as an attempt), and leaves
the registry; `openmj serve` answers /readyz 503 while it drains, then stops. Real processes:
tests/fake_worker.py (the worker node on the fake engine) and `openmj serve --no-worker`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from openmj.app import drain
from openmj.store import registry
from tests.fake_worker import FakeWorkerProcess
from tests.helpers import balance, create, stored, wait_task
from tests.http_client import HTTP
from tests.live import LiveServer, ServerProcess, make_settings, wait_until

pytestmark = pytest.mark.timeout(300)


def api_node(data: Path, pg_url: str) -> LiveServer:
    return LiveServer(make_settings(data, database_url=pg_url, run_worker=False), None)


def status_of(client: httpx.Client, task_id: str) -> str:
    return str(client.get(f"/v1/tasks/{task_id}").json()["status"])


def test_sigterm_lets_the_running_task_finish_and_claims_no_more(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "shared"
    with api_node(data, pg_url) as api:
        client = api.client(api.create_key(credits=100))
        # a job of 20 steps of 0.2 s: the signal arrives while it runs
        worker = FakeWorkerProcess(data, pg_url, FAKE_STEPS="20", FAKE_STEP_SECONDS="0.2").start()
        try:
            running = create(client, "the running one")["id"]
            wait_until(lambda: status_of(client, running) == "processing", what="the first task to start")
            waiting = create(client, "the waiting one")["id"]
            worker.signal(signal.SIGTERM)
            # the registry says at once that this node takes nothing new
            wait_until(lambda: [n.draining for n in api.call(registry.nodes(api.runtime.db))] == [True])
            assert worker.wait(60) == 0
        finally:
            worker.kill()
        assert wait_task(client, running)["status"] == "completed"
        assert status_of(client, waiting) == "pending"
        assert stored(api, waiting).attempts == 0
        assert api.call(registry.nodes(api.runtime.db)) == []  # it withdrew itself
        assert "draining: 1 running task(s)" in worker.output()


def test_past_the_grace_the_task_goes_back_uncounted_and_runs_once_elsewhere(
    tmp_path: Path, pg_url: str
) -> None:
    data = tmp_path / "shared"
    with api_node(data, pg_url) as api:
        client = api.client(api.create_key(credits=100))
        slow = FakeWorkerProcess(
            data, pg_url, FAKE_STEPS="2000", FAKE_STEP_SECONDS="0.05", OPENMJ_DRAIN_SECONDS="0.5"
        ).start()
        try:
            task_id = create(client, "a long one")["id"]
            wait_until(lambda: status_of(client, task_id) == "processing", what="the task to start")
            slow.signal(signal.SIGTERM)
            assert slow.wait(60) == 0
        finally:
            slow.kill()
        task = stored(api, task_id)
        assert (task.status.value, task.attempts, task.progress) == ("pending", 0, 0)
        fast = FakeWorkerProcess(data, pg_url).start()
        try:
            done = wait_task(client, task_id)
        finally:
            assert fast.stop() == 0
        assert done["status"] == "completed"
        assert stored(api, task_id).attempts == 1
        assert balance(client) == 100 - done["usage"]["credits_used"]  # charged once


def test_a_second_signal_stops_at_once(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "shared"
    with api_node(data, pg_url) as api:
        client = api.client(api.create_key(credits=100))
        worker = FakeWorkerProcess(data, pg_url, FAKE_STEPS="2000", FAKE_STEP_SECONDS="0.05").start()
        try:
            task_id = create(client, "a long one")["id"]
            wait_until(lambda: status_of(client, task_id) == "processing", what="the task to start")
            worker.signal(signal.SIGTERM)
            wait_until(lambda: "draining: 1 running task(s)" in worker.output(), what="the drain")
            worker.signal(signal.SIGTERM)  # the default grace is 25 s; this one does not wait for it
            assert worker.wait(20) == 0
        finally:
            worker.kill()
        assert stored(api, task_id).status.value == "pending"


def test_serve_answers_readyz_503_while_it_drains_then_exits(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", "tiny", args=("--no-worker",), OPENMJ_DRAIN_NOTICE_SECONDS="30"
    ).start()
    try:
        ready = HTTP.get(f"{server.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "media": "ok"}
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)

        def draining() -> dict[str, Any] | None:
            r = HTTP.get(f"{server.url}/readyz")
            return r.json() if r.status_code == 503 else None

        assert wait_until(draining, 30, 0.05, "/readyz to say draining")["status"] == "draining"
        # still serving while the load balancer takes it out: liveness and the API answer
        assert HTTP.get(f"{server.url}/healthz").status_code == 200
        assert HTTP.get(f"{server.url}/v1/credits").status_code == 401  # the API itself, no key
        server.proc.send_signal(signal.SIGTERM)  # a second signal ends the 30 s notice at once
        server.proc.wait(30)
    finally:
        server.kill()


def test_drain_in_an_embedded_server(tmp_path: Path) -> None:
    """`openmj serve` with its own workers: the same drain, reached in-process."""
    from tests.fake_engine import FakeEngine

    engine = FakeEngine()
    with LiveServer(make_settings(tmp_path / "data"), engine) as live:
        client = live.client(live.create_key(credits=100))
        with engine.held():
            running = create(client, "held")["id"]
            wait_until(lambda: status_of(client, running) == "processing")
            waiting = create(client, "not claimed")["id"]
            assert live.loop is not None
            drained = asyncio.run_coroutine_threadsafe(drain(live.runtime, 60), live.loop)
            ready = wait_until(lambda: (r := client.get("/readyz")).status_code == 503 and r.json())
            assert ready["status"] == "draining"
            assert not drained.done()  # the held task still runs
        drained.result(60)  # released: the task finished within the grace
        assert status_of(client, running) == "completed"
        assert status_of(client, waiting) == "pending"
