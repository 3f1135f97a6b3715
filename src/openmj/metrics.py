"""/metrics in the Prometheus text format (docs/metrics.md).

Two kinds of numbers: what the database knows (tasks, queue, latency over a window, callbacks,
credits) is read at scrape time, so every API node reports the same truth; what only this process
knows (HTTP requests, engine runs, its workers) is kept in this process's registry, one series per
node once Prometheus adds its `instance` label.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openmj import __version__
from openmj.core.tasks import Speed, Task
from openmj.store.db import Database
from openmj.store.stats import LATENCY_BUCKETS, Stats, StatsReader

log = logging.getLogger("openmj.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# HTTP methods kept as label values; anything else is "other" (a client chooses the method)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: unknown paths must not become label values
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LATENCY_HELP = {
    "total": ("openmj_task_duration_seconds", "Submit to finish of the tasks finished in the window."),
    "queue_wait": (
        "openmj_task_queue_wait_seconds",
        "Submit to first claim by a worker of the tasks finished in the window.",
    ),
    "run": (
        "openmj_task_run_seconds",
        "First claim to finish (inputs, engine, media) of the tasks finished in the window.",
    ),
}


class Metrics:
    """This process's registry and the database collector; `render()` is the /metrics body."""

    def __init__(self, workers: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "openmj_http_requests",
            "HTTP requests answered by this node, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "openmj_http_request_duration_seconds",
            "Time to answer an HTTP request on this node, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.engine_runs = Histogram(
            "openmj_engine_run_seconds",
            "Engine.run of one task on this node's workers (every denoising step of it), by outcome.",
            ["operation", "model", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        workers_gauge = Gauge("openmj_workers", "Workers running in this process.", registry=self.registry)
        workers_gauge.set_function(lambda: float(workers()))
        info = Gauge(
            "openmj_build_info", "Always 1; the openmj version.", ["version"], registry=self.registry
        )
        info.labels(version=__version__).set(1)
        self._database: DatabaseCollector | None = None
        self.cache_seconds = 0.0
        self._lock = asyncio.Lock()
        self._read_at: float | None = None  # monotonic time of the last database read

    def watch_database(
        self,
        db: Database,
        window_seconds: float,
        cache_seconds: float,
        worker_ttl: float = 45.0,
        models: Iterable[str] = (),
    ) -> None:
        """Add the database's numbers (API nodes; a worker node exposes only its own). `models`:
        the deployment's models, reported with 0 worker nodes when none serves them."""
        self._database = DatabaseCollector(StatsReader(db, window_seconds, worker_ttl=worker_ttl))
        self._database.models = tuple(models)
        self.cache_seconds = cache_seconds
        self.registry.register(self._database)

    def observe_engine_run(self, task: Task, outcome: str, seconds: float) -> None:
        model = task.engine_model or task.model
        self.engine_runs.labels(task.operation.value, model, outcome).observe(seconds)

    async def render(self) -> bytes:
        """The exposition. The database is read at most once per `cache_seconds`, however many
        scrapers (or anonymous callers) ask; this process's numbers are always current."""
        async with self._lock:
            database, last = self._database, self._read_at
            if database is not None and (last is None or time.monotonic() - last >= self.cache_seconds):
                try:
                    database.latest = await database.reader.read()
                    database.up = True
                except Exception as exc:  # the database is away: still answer with this node's numbers
                    log.warning("metrics: the database could not be read (%s)", exc)
                    database.latest, database.up = None, False
                self._read_at = time.monotonic()
            return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """The families of the last `Stats` read (read by `Metrics.render` just before collecting)."""

    def __init__(self, reader: StatsReader) -> None:
        self.reader = reader
        self.latest: Stats | None = None
        self.up = False
        self.models: tuple[str, ...] = ()

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on the data; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "openmj_database_up", "1 when this scrape could read the database, else 0.", value=int(self.up)
        )
        stats = self.latest
        if stats is None:
            return
        yield from _task_families(stats)
        yield from _latency_families(stats)
        yield from _credit_families(stats)
        yield from _node_families(stats, self.models)
        callbacks = GaugeMetricFamily(
            "openmj_callbacks",
            "Callback deliveries in the outbox by state: pending, delivered, dead (retries exhausted), "
            "skipped (a stale progress event).",
            labels=["state"],
        )
        for state in sorted({"pending", "delivered", "dead", *stats.callbacks}):
            callbacks.add_metric([state], stats.callbacks.get(state, 0))
        yield callbacks


def _task_families(stats: Stats) -> Iterable[Metric]:
    tasks = GaugeMetricFamily(
        "openmj_tasks", "Tasks in the database by operation and status.", labels=["operation", "status"]
    )
    for (operation, status), n in sorted(stats.tasks.items()):
        tasks.add_metric([operation, status], n)
    yield tasks
    depth = GaugeMetricFamily(
        "openmj_queue_depth", "Pending tasks by speed (the queue priority).", labels=["speed"]
    )
    oldest = GaugeMetricFamily(
        "openmj_queue_oldest_age_seconds", "Age of the oldest pending task by speed.", labels=["speed"]
    )
    for speed in sorted({s.value for s in Speed} | set(stats.queue)):
        depth.add_metric([speed], stats.queue.get(speed, 0))
        oldest.add_metric([speed], stats.oldest_pending.get(speed, 0.0))
    yield depth
    yield oldest
    yield GaugeMetricFamily(
        "openmj_workers_busy",
        "Workers holding a task now, on every node (distinct lease owners).",
        value=stats.busy_workers,
    )


def _node_families(stats: Stats, expected: Iterable[str]) -> Iterable[Metric]:
    """The worker registry: live worker processes, and how many of them serve each model."""
    nodes = GaugeMetricFamily(
        "openmj_worker_nodes",
        "Worker processes heard from within OPENMJ_WORKER_TTL_SECONDS, by state: serving or draining.",
        labels=["state"],
    )
    for state in ("serving", "draining"):
        nodes.add_metric([state], sum(1 for n in stats.nodes if n.draining == (state == "draining")))
    yield nodes
    models = GaugeMetricFamily(
        "openmj_model_worker_nodes",
        "Live worker processes that claim tasks of each model (not draining); a model at 0 has "
        "its tasks wait, then time out.",
        labels=["model"],
    )
    counts = dict.fromkeys(expected, 0)
    for node in stats.nodes:
        for model in node.models:
            counts[model] = counts.get(model, 0) + (0 if node.draining else 1)
    for model, n in sorted(counts.items()):
        models.add_metric([model], n)
    yield models


def _latency_families(stats: Stats) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "openmj_task_window_seconds",
        "The window of the task latency histograms: tasks finished this long ago at most.",
        value=stats.window_seconds,
    )
    bounds = [_bound(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    for name, histograms in stats.latency.items():
        metric, doc = LATENCY_HELP[name]
        family = HistogramMetricFamily(metric, doc, labels=["operation", "model", "status"])
        for key, h in sorted(histograms.items()):
            family.add_metric(list(key), list(zip(bounds, h.buckets, strict=True)), h.total)
        yield family


def _credit_families(stats: Stats) -> Iterable[Metric]:
    reserved = -stats.ledger.get("reserve", 0.0)
    refunded = stats.ledger.get("refund", 0.0)
    yield CounterMetricFamily(
        "openmj_credits_reserved",
        "Credits reserved at submit (the ledger's reserve entries).",
        value=reserved,
    )
    yield CounterMetricFamily(
        "openmj_credits_refunded", "Credits refunded (the ledger's refund entries).", value=refunded
    )
    # reserved − refunded − held only grows: a reservation becomes a charge when its task ends
    # without a refund (completed, or failed by moderation)
    yield CounterMetricFamily(
        "openmj_credits_charged",
        "Credits charged: reservations of finished tasks that were not refunded.",
        value=max(0.0, reserved - refunded - stats.held),
    )
    yield GaugeMetricFamily(
        "openmj_credits_held", "Credits reserved by pending and processing tasks.", value=stats.held
    )
    yield GaugeMetricFamily(
        "openmj_credits_granted",
        "Credits granted to keys, net (an operator may take credits back).",
        value=stats.ledger.get("grant", 0.0),
    )
    entries = CounterMetricFamily("openmj_ledger_entries", "Ledger rows by kind.", labels=["kind"])
    for kind, n in sorted(stats.ledger_rows.items()):
        entries.add_metric([kind], n)
    yield entries


def _bound(value: float) -> str:
    return str(float(value))


class RequestMetrics:
    """ASGI middleware: counts each HTTP request under its route template ("/v1/tasks/{task_id}"),
    never the raw path, so task ids and scanners' paths cannot multiply the series."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is answered 500 outside

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            route = route_template(scope)
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (set by the router), or UNMATCHED."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


def serve_node_metrics(metrics: Metrics, host: str, port: int) -> Callable[[], None]:
    """A worker node's /metrics (its own registry, no database numbers) on `host:port`, served by
    prometheus_client in a thread; returns the function that stops it."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def close() -> None:
        server.shutdown()
        thread.join(5)

    return close
