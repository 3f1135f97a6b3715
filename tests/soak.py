"""The soak test of issue 18: two API nodes (`openmj serve --no-worker`) and two worker processes
(the worker node on the fake engine, tests/fake_worker.py) on one PostgreSQL and one SeaweedFS
bucket; tasks from several keys through all four APIs while nodes and workers are SIGKILLed at
random and restarted. At the end every accepted task must be finished, none lost, none created or
charged twice, every key's ledger must sum to its balance, and every result link must download,
the same bytes, from either API node.

    python -m tests.soak [--tasks 200] [--keys 4] [--kills 24]     # `make soak`

tests/test_soak.py runs a smaller one in the default suite. Clients behave as a careful client
would: every create carries an Idempotency-Key, and a create whose answer was lost (the node died,
or answered 5xx) is sent again, with the same key, to the other node.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.fake_worker import FakeWorkerProcess
from tests.http_client import HTTP
from tests.live import ServerProcess, wait_until
from tests.seaweed import SeaweedS3

FINISHED = ("completed", "failed", "cancelled")
MEDIA_PREFIX = "soak"
START_TIMEOUT = 300.0  # a safety net for a process start on a loaded machine, not a measure

#: per API: its create path, the body for the n-th prompt, and where its answer names the task
CREATES: dict[str, tuple[str, Callable[[str], dict[str, Any]], Callable[[Any], str | None]]] = {
    "evolink": ("/v1/images/generations", lambda p: {"model": "mj-v7", "prompt": p}, lambda a: a.get("id")),
    "kie": (
        "/api/v1/mj/generate",
        lambda p: {"taskType": "mj_txt2img", "prompt": p},
        lambda a: (a.get("data") or {}).get("taskId"),
    ),
    "apixo": (
        "/api/v1/generateTask/midjourney",
        lambda p: {"request_type": "async", "input": {"mode": "text-to-image", "prompt": p}},
        lambda a: (a.get("data") or {}).get("taskId"),
    ),
    "mjproxy": ("/mj/submit/imagine", lambda p: {"prompt": p}, lambda a: a.get("result")),
}


@dataclass
class Report:
    tasks: int = 0  # creates the clients made
    accepted: int = 0  # of them, answered with a task id
    refused: int = 0  # answered 4xx (none expected)
    resent: int = 0  # creates sent again after a lost answer (same Idempotency-Key)
    kills: Counter[str] = field(default_factory=Counter)  # role → SIGKILLs
    statuses: Counter[str] = field(default_factory=Counter)  # final status → tasks
    unfinished: int = 0
    lost: int = 0  # accepted ids the database does not have
    duplicates: int = 0  # tasks in the database no client was answered with (a create done twice)
    double_charged: int = 0  # tasks with more than one reservation, or refunded and charged
    ledger_mismatches: int = 0  # keys whose ledger does not sum to their balance
    balance_mismatches: int = 0  # keys whose balance is not their grants minus their tasks' charges
    links: int = 0  # result links downloaded (from both API nodes)
    link_failures: int = 0
    missing_objects: int = 0  # completed tasks whose images are not objects in the bucket
    not_ready: int = 0  # API nodes not answering /readyz 200 at the end
    seconds: float = 0.0

    def ok(self) -> bool:
        return (
            self.accepted == self.tasks
            and not (self.refused or self.unfinished or self.lost or self.duplicates or self.double_charged)
            and not (self.ledger_mismatches or self.balance_mismatches or self.link_failures)
            and not (self.missing_objects or self.not_ready)
            and self.links > 0
        )

    def text(self) -> str:
        kills = ", ".join(f"{role} {n}" for role, n in sorted(self.kills.items())) or "none"
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items()))
        return "\n".join(
            [
                f"soak: {self.tasks} creates, {self.accepted} accepted, {self.refused} refused, "
                f"{self.resent} sent again after a lost answer",
                f"  SIGKILLs: {kills} (each restarted)",
                f"  final: {statuses}; unfinished {self.unfinished}",
                f"  lost {self.lost}, created twice {self.duplicates}, charged twice {self.double_charged}",
                f"  keys whose ledger ≠ balance {self.ledger_mismatches}, "
                f"whose balance ≠ grants − charges {self.balance_mismatches}",
                f"  result links downloaded from both API nodes {self.links}, failures {self.link_failures}; "
                f"completed tasks missing objects in the bucket {self.missing_objects}",
                f"  API nodes not ready at the end {self.not_ready}; {self.seconds:.0f} s",
                f"  {'OK' if self.ok() else 'FAILED'}",
            ]
        )


class Deployment:
    """Two API nodes and two fake-engine workers on one database and one bucket."""

    def __init__(self, root: Path, database_url: str, s3: SeaweedS3, bucket: str) -> None:
        self.root = root
        self.database_url = database_url
        self.env = {
            "OPENMJ_DATABASE_URL": database_url,
            "OPENMJ_MEDIA_URL": f"s3://{bucket}/{MEDIA_PREFIX}",
            "OPENMJ_S3_ENDPOINT_URL": s3.endpoint,
            "OPENMJ_S3_ACCESS_KEY_ID": s3.settings(bucket, "")["s3_access_key_id"],
            "OPENMJ_S3_SECRET_ACCESS_KEY": s3.settings(bucket, "")["s3_secret_access_key"],
            "OPENMJ_S3_REGION": "us-east-1",
            # a killed worker's task is back in the queue 3 s after its last heartbeat
            "OPENMJ_LEASE_SECONDS": "3",
            "OPENMJ_POLL_SECONDS": "0.2",
            "OPENMJ_REGISTRY_SECONDS": "1",
            "OPENMJ_WORKER_TTL_SECONDS": "5",
            "OPENMJ_VIDEO_MODEL": "none",
            "OPENMJ_CAPTION_MODEL": "none",
        }
        self.apis: list[ServerProcess] = [self._api(i) for i in range(2)]
        self.workers: list[FakeWorkerProcess] = [self._worker(i) for i in range(2)]
        self.urls = [a.url for a in self.apis]
        self.closing = False
        self.restarting: set[tuple[str, int]] = set()  # (role, slot) of a process being started again
        self._restarts: list[threading.Thread] = []

    def _api(self, i: int, port: int | None = None) -> ServerProcess:
        return ServerProcess(self.root / f"api-{i}", "tiny", port, args=("--no-worker",), **self.env)

    def _worker(self, i: int) -> FakeWorkerProcess:
        return FakeWorkerProcess(self.root / f"worker-{i}", self.database_url, **self.env)

    def create_keys(self, count: int, credits: float) -> list[str]:
        """Migrate the shared database and make the keys (what `openmj keys create` does)."""
        from openmj.accounts import create_key
        from openmj.store.db import Database, migrate_sync
        from openmj.store.repo import Repository

        migrate_sync(self.database_url)

        async def make() -> list[str]:
            db = Database(self.database_url)
            try:
                return [(await create_key(Repository(db), credits=credits)).secret for _ in range(count)]
            finally:
                await db.dispose()

        return asyncio.run(make())

    def start(self) -> None:
        """Every process at once (each spends its first seconds importing)."""
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: p.start(START_TIMEOUT), [*self.apis, *self.workers]))

    def kill(self, rng: random.Random, api: bool) -> str:
        """SIGKILL an API node (or a worker) now and start it again in the background; its role.
        The other one of its role is never down at the same time: work always goes on."""
        role = "api node" if api else "worker"
        wait_until(lambda: not any(r == role for r, _ in self.restarting), 300, 0.05, "the last restart")
        i = rng.randrange(2)
        self.restarting.add((role, i))
        if api:
            self.apis[i].kill()
        else:
            self.workers[i].kill()

        def restart() -> None:
            time.sleep(rng.uniform(0.1, 1.0))
            for _ in range(3):  # a start can fail on a machine this loaded: the next try
                if self.closing:
                    break
                proc: Any = self._api(i, self.apis[i].port) if api else self._worker(i)
                if api:
                    self.apis[i] = proc
                else:
                    self.workers[i] = proc
                try:
                    proc.start(START_TIMEOUT)
                    break
                except Exception as exc:
                    print(f"soak: a {role} did not start ({exc}); again", file=sys.stderr)
                    proc.kill()
            self.restarting.discard((role, i))

        self._restarts.append(threading.Thread(target=restart, daemon=True))
        self._restarts[-1].start()
        return role

    def settle(self) -> None:
        """Until every killed process runs again."""
        for t in self._restarts:
            t.join(300)

    def stop(self) -> None:
        self.closing = True
        self.settle()
        for proc in [*self.apis, *self.workers]:
            proc.stop()


def _create(urls: list[str], n: int, key: str, report: Report, deadline: float) -> str | None:
    """The n-th create, sent until some node answers it; the task id, or None if refused."""
    api = list(CREATES)[n % len(CREATES)]
    path, body, task_of = CREATES[api]
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"soak-{n}"}
    for attempt in range(10_000):
        if attempt:
            report.resent += 1
            time.sleep(min(0.05 * attempt, 1.0))
        if time.monotonic() > deadline:
            raise AssertionError(f"create {n} found no node to take it")
        url = urls[(n + attempt) % len(urls)]
        try:
            r = HTTP.post(url + path, json=body(f"soak {n}: a harbour at dusk"), headers=headers, timeout=15)
        except httpx.TransportError:  # the node died or is restarting: the other one
            continue
        if r.status_code >= 500:
            continue
        if r.status_code != 200 or not task_of(r.json()):
            print(f"create {n} refused: {r.status_code} {r.text[:300]}", file=sys.stderr)
            report.refused += 1
            return None
        return task_of(r.json())
    return None


def _get(urls: list[str], path: str, key: str | None, deadline: float) -> httpx.Response:
    """GET from whichever API node answers (they may be restarting)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for attempt in range(10_000):
        try:
            r = HTTP.get(urls[attempt % len(urls)] + path, headers=headers, timeout=15)
            if r.status_code < 500:
                return r
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no API node answered GET {path}")
        time.sleep(0.1)
    raise AssertionError("unreachable")


def run(
    root: Path,
    database_url: str,
    s3: SeaweedS3,
    bucket: str,
    *,
    tasks: int = 200,
    keys: int = 4,
    kills: int = 24,
    seed: int = 18,
    credits: float = 100_000.0,
) -> Report:
    """The soak. The kills are placed by progress, not by the clock: `kills` points drawn at
    random over the work (creates answered + tasks finished, 0 … 2 × tasks), API nodes and
    workers in turn, an API node first, so that however fast the machine, creates are in flight
    when API nodes die and tasks are queued or running when workers die."""
    started = time.monotonic()

    def note(what: str) -> None:
        print(f"soak +{time.monotonic() - started:5.1f} s: {what}", file=sys.stderr, flush=True)

    report = Report(tasks=tasks)
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, max(2 * tasks - tasks // 5, kills + 1)), kills))
    dep = Deployment(root, database_url, s3, bucket)
    secrets = dep.create_keys(keys, credits)
    dep.start()
    note(f"{keys} keys; 2 API nodes and 2 workers up")
    owner: dict[str, str] = {}  # accepted task id → its key
    final: dict[str, dict[str, Any]] = {}  # finished task id → its EvoLink task object
    done = threading.Event()
    deadline = time.monotonic() + 600 + tasks * 3  # a safety net, never what is measured
    try:

        def killer() -> None:
            for turn, point in enumerate(points):
                wait_until(
                    lambda p=point: done.is_set() or len(owner) + len(final) >= p, deadline - time.monotonic()
                )
                if done.is_set():
                    return
                role = dep.kill(rng, api=turn % 2 == 0)
                report.kills[role] += 1
                note(f"at {len(owner)} accepted, {len(final)} finished: {role} killed")

        def poller() -> None:
            while not done.is_set():
                _sweep(dep.urls, owner, final, deadline)
                time.sleep(0.2)

        threads = [threading.Thread(target=t, daemon=True) for t in (killer, poller)]
        for t in threads:
            t.start()

        def one(n: int) -> None:
            task_id = _create(dep.urls, n, secrets[n % keys], report, deadline)
            if task_id is not None:
                owner[task_id] = secrets[n % keys]

        pool = ThreadPoolExecutor(4)
        try:
            list(pool.map(one, range(tasks)))
        finally:  # interrupted: do not wait for creates still retrying
            pool.shutdown(wait=False, cancel_futures=True)
        report.accepted = len(owner)
        note(f"{len(owner)} creates accepted")
        threads[0].join(deadline - time.monotonic())  # every kill done (the last point comes before the end)
        wait_until(lambda: len(final) == len(owner), deadline - time.monotonic(), 0.2, "every task to finish")
        done.set()
        threads[1].join(120)
        dep.settle()
        note("every task finished")
        report.statuses = Counter(b["status"] for b in final.values())
        report.unfinished = len(owner) - len(final)
        _check_database(database_url, owner, credits, report)
        _check_links(dep.urls, final, report)
        objects = {k.split("/")[1] for k in s3.keys(bucket, MEDIA_PREFIX + "/")}
        report.missing_objects = sum(
            1 for t, body in final.items() if body["status"] == "completed" and t not in objects
        )
        report.not_ready = sum(1 for url in dep.urls if HTTP.get(f"{url}/readyz").status_code != 200)
        note("database checked, links downloaded")
    finally:
        done.set()
        dep.stop()
    report.seconds = time.monotonic() - started
    return report


def _sweep(urls: list[str], owner: dict[str, str], final: dict[str, dict[str, Any]], deadline: float) -> None:
    """Read every accepted, unfinished task once (EvoLink's GET reads a task of any API)."""
    for task_id, key in list(owner.items()):
        if task_id not in final:
            body = _get(urls, f"/v1/tasks/{task_id}", key, deadline).json()
            if body.get("status") in FINISHED:
                final[task_id] = body


def _check_database(database_url: str, owner: dict[str, str], credits: float, report: Report) -> None:
    """What the clients were told against what the database holds: the tasks, each charge, each key."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> tuple[list[Any], list[Any], list[Any]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                tasks = (
                    await conn.execute(text("SELECT id, owner, status, credits_charged FROM tasks"))
                ).all()
                ledger = (await conn.execute(text("SELECT key_id, task_id, kind, amount FROM ledger"))).all()
                keys = (await conn.execute(text("SELECT id, credits FROM api_keys"))).all()
            return list(tasks), list(ledger), list(keys)
        finally:
            await engine.dispose()

    tasks, ledger, keys = asyncio.run(read())
    stored = {t.id: t for t in tasks}
    report.lost = sum(1 for t in owner if t not in stored)
    report.duplicates = sum(1 for t in stored if t not in owner)
    entries: dict[str, Counter[str]] = {}
    for row in ledger:
        if row.task_id is not None:
            entries.setdefault(row.task_id, Counter())[row.kind] += 1
    for task_id, row in stored.items():
        kinds = entries.get(task_id, Counter())
        refunded = kinds["refund"] > 0
        if kinds["reserve"] != 1 or kinds["refund"] > 1 or refunded == (row.status == "completed"):
            report.double_charged += 1
    sums: dict[str, float] = {}
    charges: dict[str, float] = {}
    for row in ledger:
        sums[row.key_id] = sums.get(row.key_id, 0.0) + row.amount
    for row in stored.values():
        charges[row.owner] = charges.get(row.owner, 0.0) + row.credits_charged
    for key in keys:
        report.ledger_mismatches += abs(sums.get(key.id, 0.0) - key.credits) > 1e-6
        report.balance_mismatches += abs(credits - charges.get(key.id, 0.0) - key.credits) > 1e-6


def _check_links(urls: list[str], final: dict[str, dict[str, Any]], report: Report) -> None:
    """Every result link of a completed task, from each API node: 200 and the same bytes."""

    def digest(path: str, url: str) -> str | None:
        r = HTTP.get(url + path, timeout=30)
        return hashlib.sha256(r.content).hexdigest() if r.status_code == 200 and r.content else None

    paths = []
    for body in final.values():
        for link in body.get("results", []):
            parts = urlsplit(link)
            paths.append(f"{parts.path}?{parts.query}")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda pair: digest(*pair), [(p, u) for p in paths for u in urls]))
    for i in range(len(paths)):
        each = got[i * len(urls) : (i + 1) * len(urls)]  # one path from every node
        report.links += len(each)
        report.link_failures += sum(1 for d in each if d is None) + (len(set(each)) != 1)


def main() -> None:
    from tests.pg import PostgresCluster, pg_bin

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs, API nodes and workers in turn")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    if pg_bin() is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="openmj-soak-"))
    cluster, s3 = PostgresCluster(), SeaweedS3()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # let the finally blocks stop the servers
    try:
        cluster.start()
        url = cluster.database("soak")
        s3.start()
        s3.create_bucket("openmj-soak")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        report = run(
            root,
            url,
            s3,
            "openmj-soak",
            tasks=args.tasks,
            keys=args.keys,
            kills=args.kills,
            seed=args.seed,
        )
    finally:
        s3.stop()
        cluster.stop()
    print(report.text())
    sys.exit(0 if report.ok() else 1)


if __name__ == "__main__":
    main()
