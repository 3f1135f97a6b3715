"""Issue 17, metrics: /metrics on a real server (the fake engine), parsed as Prometheus parses it.

What is checked is what an operator's dashboard would show after real requests: task counts by
operation and status, the queue by speed, latency histograms that add up, callbacks delivered to a
loopback receiver, credits equal to the ledger and to the key's balance, HTTP requests under their
route template. No timing is asserted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from openmj.metrics import Metrics, serve_node_metrics
from openmj.store.models import LedgerRow, TaskRow
from openmj.store.stats import StatsReader
from tests.fake_engine import FakeEngine
from tests.http_client import HTTP
from tests.live import LiveServer, free_port, make_settings, wait_until
from tests.loopback import Receiver
from tests.pg import pg_bin

pytestmark = pytest.mark.timeout(300)

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scrape:
    """One /metrics answer: its families, and its samples by (name, labels)."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: Samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families.values() for s in f.samples
        }

    def value(self, name: str, default: float | None = None, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            if default is not None:
                return default
            raise KeyError(f"{name}{labels} not in the scrape")
        return self.samples[key]

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for n, labels in self.samples if n == name]


def scrape(server: LiveServer) -> Scrape:
    res = HTTP.get(f"{server.url}/metrics", timeout=30)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(res.text)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("data-metrics"), metrics_cache_seconds=0)
    with LiveServer(settings, FakeEngine()) as live:
        yield live


def finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return wait_until(done, 60, 0.05, f"task {task_id} to finish")


@pytest.fixture(scope="module")
def made(server: LiveServer, receiver: Receiver) -> dict[str, Any]:
    """Two imagines (one with a callback), one upscale that fails on the worker, before the engine,
    and is refunded (its source image is gone): the tasks the tests count."""
    c = server.client(server.create_key(credits=1000))
    first = c.post(
        "/v1/images/generations",
        json={"model": "mj-v7", "prompt": "a red fox --seed 1", "callback_url": receiver.url("/hook")},
    ).json()
    second = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a blue owl --seed 2"}).json()
    done = [finished(c, first["id"]), finished(c, second["id"])]
    server.runtime.media.delete_task(first["id"])  # as expiry would
    upscale = c.post(
        "/v1/images/generations",
        json={"model": "mj-v7-upscale", "model_params": {"task_id": first["id"], "image_number": 1}},
    ).json()
    failed = finished(c, upscale["id"])
    assert [t["status"] for t in done] == ["completed", "completed"] and failed["status"] == "failed"
    receiver.wait_for("/hook", 1)

    def delivered() -> bool:
        rows = server.call(server.runtime.repo.outbox_for_task(first["id"]))
        return bool(rows) and all(r.state == "delivered" for r in rows)

    wait_until(delivered, 60, 0.05, "the callback to be delivered")
    return {"client": c, "completed": done, "failed": failed}


def test_tasks_are_counted_by_operation_and_status(server: LiveServer, made: dict[str, Any]) -> None:
    m = scrape(server)
    assert m.value("openmj_database_up") == 1
    assert m.value("openmj_tasks", operation="imagine", status="completed") == 2
    assert m.value("openmj_tasks", operation="upscale", status="failed") == 1
    assert sum(v for (n, _), v in m.samples.items() if n == "openmj_tasks") == 3
    for speed in ("draft", "relax", "fast", "turbo"):  # every speed is a series, empty or not
        assert m.value("openmj_queue_depth", speed=speed) == 0
    assert m.value("openmj_workers") == 1
    assert m.value("openmj_workers_busy") == 0


def test_latency_histograms_add_up(server: LiveServer, made: dict[str, Any]) -> None:
    m = scrape(server)
    assert m.families["openmj_task_duration_seconds"].type == "histogram"
    for name in ("openmj_task_duration_seconds", "openmj_task_queue_wait_seconds", "openmj_task_run_seconds"):
        for labels, count in (
            ({"operation": "imagine", "model": "tiny", "status": "completed"}, 2),
            ({"operation": "upscale", "model": "tiny", "status": "failed"}, 1),
        ):
            assert m.value(f"{name}_count", **labels) == count, name
            buckets = sorted(
                (float(s["le"]), m.value(f"{name}_bucket", **s))
                for s in m.series(f"{name}_bucket")
                if {k: v for k, v in s.items() if k != "le"} == labels
            )
            counts = [n for _, n in buckets]
            assert counts == sorted(counts), f"{name} buckets must be cumulative"
            assert buckets[-1] == (float("inf"), count)
            assert m.value(f"{name}_sum", **labels) >= 0
    assert m.value("openmj_task_window_seconds") == server.settings.metrics_window_seconds
    # the engine ran the two imagines; the upscale was refused before the engine was called
    labels = {"operation": "imagine", "model": "tiny", "outcome": "completed"}
    assert m.value("openmj_engine_run_seconds_count", **labels) == 2
    assert m.value("openmj_engine_run_seconds_bucket", le="+Inf", **labels) == 2
    refused = {"operation": "upscale", "model": "tiny", "outcome": "error"}
    assert m.value("openmj_engine_run_seconds_count", 0.0, **refused) == 0


def test_callbacks_are_counted_by_outcome(server: LiveServer, made: dict[str, Any]) -> None:
    m = scrape(server)
    assert m.value("openmj_callbacks", state="delivered") == 1
    assert m.value("openmj_callbacks", state="pending") == 0
    assert m.value("openmj_callbacks", state="dead") == 0


def test_credits_equal_the_ledger_and_the_balance(server: LiveServer, made: dict[str, Any]) -> None:
    m = scrape(server)
    used = [t["usage"]["credits_used"] for t in made["completed"]]
    refunded = made["failed"]["usage"]["credits_reserved"]
    assert min(used) > 0 and refunded > 0 and made["failed"]["usage"]["credits_used"] == 0
    assert m.value("openmj_credits_charged_total") == pytest.approx(sum(used))
    assert m.value("openmj_credits_refunded_total") == pytest.approx(refunded)
    assert m.value("openmj_credits_reserved_total") == pytest.approx(sum(used) + refunded)
    assert m.value("openmj_credits_held") == 0
    assert m.value("openmj_credits_granted") == 1000
    balance = made["client"].get("/v1/credits").json()["data"]["token"]
    assert m.value("openmj_credits_charged_total") == pytest.approx(balance["used_credits"])

    async def ledger() -> dict[str, float]:
        async with server.runtime.db.read_conn() as conn:
            q = select(LedgerRow.kind, func.sum(LedgerRow.amount)).group_by(LedgerRow.kind)
            return {str(k): float(v) for k, v in await conn.execute(q)}

    sums = server.call(ledger())
    assert m.value("openmj_credits_refunded_total") == pytest.approx(sums["refund"])
    assert m.value("openmj_credits_charged_total") == pytest.approx(-(sums["reserve"] + sums["refund"]))
    assert m.value("openmj_ledger_entries_total", kind="reserve") == 3
    assert m.value("openmj_ledger_entries_total", kind="refund") == 1


def test_the_kept_totals_equal_a_full_count(tmp_path: Path) -> None:
    """Finished tasks and the ledger are kept per node and only what is new is read: with no settling
    margin every row so far joins the kept part, and a task made after it is counted on top."""
    with LiveServer(make_settings(tmp_path), FakeEngine()) as server:

        async def full() -> tuple[dict[tuple[str, str], int], dict[str, float]]:
            async with server.runtime.db.read_conn() as conn:
                by = (TaskRow.operation, TaskRow.status)
                tasks = {
                    (str(o), str(s)): int(n)
                    for o, s, n in await conn.execute(select(*by, func.count()).group_by(*by))
                }
                q = select(LedgerRow.kind, func.sum(LedgerRow.amount)).group_by(LedgerRow.kind)
                return tasks, {str(k): float(v) for k, v in await conn.execute(q)}

        c = server.client(server.create_key(credits=100))

        def imagine(prompt: str) -> None:
            task = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": prompt}).json()
            assert finished(c, task["id"])["status"] == "completed"

        imagine("a grey heron")
        reader = StatsReader(server.runtime.db, settle_seconds=0)
        first = server.call(reader.read())
        tasks, ledger = server.call(full())
        assert first.tasks == tasks == {("imagine", "completed"): 1}
        assert first.ledger == pytest.approx(ledger)
        imagine("a white egret")
        second = server.call(reader.read())
        tasks, ledger = server.call(full())
        assert second.tasks == tasks == {("imagine", "completed"): 2}
        assert second.ledger == pytest.approx(ledger)
        assert second.ledger_rows == {"grant": 1, "reserve": 2}


def test_http_requests_are_counted_by_route_template(server: LiveServer, made: dict[str, Any]) -> None:
    c: httpx.Client = made["client"]
    task_id = made["completed"][0]["id"]
    route = "/v1/tasks/{task_id}"
    before = scrape(server)
    ok = before.value("openmj_http_requests_total", 0.0, method="GET", route=route, status="200")
    missing = before.value("openmj_http_requests_total", 0.0, method="GET", route=route, status="404")
    unmatched = before.value("openmj_http_requests_total", 0.0, method="GET", route="unmatched", status="404")
    for _ in range(3):
        assert c.get(f"/v1/tasks/{task_id}").status_code == 200
    assert c.get("/v1/tasks/task-unified-1763779200-nosuch00").status_code == 404
    assert c.get(f"/no/such/{task_id}").status_code == 404
    after = scrape(server)
    assert after.value("openmj_http_requests_total", method="GET", route=route, status="200") == ok + 3
    assert after.value("openmj_http_requests_total", method="GET", route=route, status="404") == missing + 1
    lost = {"method": "GET", "route": "unmatched", "status": "404"}
    assert after.value("openmj_http_requests_total", **lost) == unmatched + 1
    assert after.value("openmj_http_request_duration_seconds_count", method="GET", route=route) >= ok + 4
    # no raw path became a label value: a task id appears in no series
    routes = {s["route"] for s in after.series("openmj_http_requests_total")}
    assert not any(task_id in r for r in routes) and "/metrics" in routes


def test_the_queue_by_speed_and_a_busy_worker(tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = make_settings(tmp_path, metrics_cache_seconds=0)
    with LiveServer(settings, engine) as server:
        c = server.client(server.create_key(credits=1000))

        def submit(speed: str) -> str:
            body = {"model": "mj-v7", "prompt": f"a {speed} cat", "model_params": {"speed": speed}}
            return str(c.post("/v1/images/generations", json=body).json()["id"])

        with engine.held():  # the first task holds the only worker; the others wait
            first = submit("fast")
            wait_until(lambda: c.get(f"/v1/tasks/{first}").json()["status"] == "processing", 60)
            ids = [first, submit("turbo"), submit("turbo"), submit("draft")]
            m = scrape(server)
            assert m.value("openmj_queue_depth", speed="turbo") == 2
            assert m.value("openmj_queue_depth", speed="draft") == 1
            assert m.value("openmj_queue_depth", speed="fast") == 0
            assert m.value("openmj_tasks", operation="imagine", status="pending") == 3
            assert m.value("openmj_tasks", operation="imagine", status="processing") == 1
            assert m.value("openmj_workers_busy") == 1
            assert m.value("openmj_credits_held") == pytest.approx(
                sum(c.get(f"/v1/tasks/{i}").json()["usage"]["credits_reserved"] for i in ids)
            )
            assert m.value("openmj_credits_charged_total") == 0
        for task_id in ids:
            finished(c, task_id)
        m = scrape(server)
        assert m.value("openmj_tasks", operation="imagine", status="completed") == 4
        assert m.value("openmj_queue_depth", speed="turbo") == 0
        assert m.value("openmj_credits_held") == 0
        done = {"operation": "imagine", "model": "tiny", "status": "completed"}
        assert m.value("openmj_task_duration_seconds_count", **done) == 4


def test_the_database_is_read_once_per_cache_period(tmp_path: Path) -> None:
    """Scrapes within the cache period answer the last database read; this node's own numbers
    are current in every answer."""
    with LiveServer(make_settings(tmp_path, metrics_cache_seconds=3600), FakeEngine()) as server:
        c = server.client(server.create_key(credits=100))
        before = scrape(server)
        task = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a kite"}).json()
        assert finished(c, task["id"])["status"] == "completed"
        after = scrape(server)
        assert after.families["openmj_tasks"].samples == before.families["openmj_tasks"].samples == []
        post = {"method": "POST", "route": "/v1/images/generations", "status": "200"}
        assert before.value("openmj_http_requests_total", 0.0, **post) == 0
        assert after.value("openmj_http_requests_total", **post) == 1
        run = {"operation": "imagine", "model": "tiny", "outcome": "completed"}
        assert after.value("openmj_engine_run_seconds_count", **run) == 1


def test_the_grafana_dashboard_only_names_exposed_metrics(server: LiveServer, made: dict[str, Any]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = set(scrape(server).families)
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert panels and dashboard["title"]
    for panel in panels:
        assert panel["title"] and panel["targets"], panel.get("title")
        for target in panel["targets"]:
            names = re.findall(r"\bopenmj_[a-z_]+", target["expr"])
            assert names, target["expr"]
            for name in names:
                family = re.sub(r"_(bucket|sum|count|total)$", "", name)
                assert family in exposed, f"panel {panel['title']!r} names {name}, which /metrics lacks"


def test_a_worker_node_serves_its_own_numbers_on_its_port() -> None:
    """`openmj worker --metrics-port`: this process's registry over HTTP, no database numbers
    (the API nodes report those)."""
    metrics = Metrics(lambda: 2)
    port = free_port()
    close = serve_node_metrics(metrics, "127.0.0.1", port)
    try:
        res = HTTP.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        close()
    assert res.status_code == 200
    m = Scrape(res.text)
    assert m.value("openmj_workers") == 2
    assert "openmj_engine_run_seconds" in m.families and "openmj_tasks" not in m.families


@pytest.mark.postgres
@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed")
def test_two_nodes_on_postgres_report_the_same_database(tmp_path: Path, pg_url: str) -> None:
    """An API-only node and a node with a worker on one PostgreSQL: the database's numbers are the
    same on both; HTTP requests and engine runs are each node's own."""
    url = pg_url
    api = make_settings(tmp_path / "api", database_url=url, run_worker=False, metrics_cache_seconds=0)
    gpu = make_settings(tmp_path / "gpu", database_url=url, metrics_cache_seconds=0)
    with LiveServer(api, None) as front, LiveServer(gpu, FakeEngine()) as back:
        c = front.client(front.create_key(credits=100))
        task = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a pier"}).json()
        assert finished(c, task["id"])["status"] == "completed"
        a, b = scrape(front), scrape(back)
        shared = ("openmj_tasks", "openmj_callbacks", "openmj_queue_depth", "openmj_credits_charged")
        for family in shared:
            assert a.families[family].samples == b.families[family].samples, family
        labels = {"operation": "imagine", "model": "tiny", "status": "completed"}
        assert a.value("openmj_task_duration_seconds_count", **labels) == 1
        assert b.value("openmj_task_duration_seconds_count", **labels) == 1
        assert a.value("openmj_credits_charged_total") == task["usage"]["credits_reserved"]
        run = {"operation": "imagine", "model": "tiny", "outcome": "completed"}
        assert b.value("openmj_engine_run_seconds_count", **run) == 1
        assert a.value("openmj_engine_run_seconds_count", 0.0, **run) == 0
        post = {"method": "POST", "route": "/v1/images/generations", "status": "200"}
        assert a.value("openmj_http_requests_total", **post) == 1
        assert b.value("openmj_http_requests_total", 0.0, **post) == 0
        assert (a.value("openmj_workers"), b.value("openmj_workers")) == (0, 1)
