"""Worker throughput and queue pickup on PostgreSQL: tasks per second with 1, 2 and 4
`openmj worker --model tiny` processes behind one `openmj serve --no-worker`, and how long a task
waits for a worker (submit → processing) when the workers are idle and when they are busy.

    HF_HUB_OFFLINE=1 python bench/bench_workers.py [--tasks 8] [--workers 1,2,4] [--probes 5]

Every time comes from the database (`created_at` at submit, `started_at` at the claim,
`finished_at` when settled), not from polling:

- **tasks/s**: a burst of `--tasks` imagines submitted at once, from the first submit to the last
  finish;
- **pickup, idle**: one task at a time, submitted a second after the previous one finished (the
  workers are asleep on LISTEN/NOTIFY): started_at − created_at;
- **next claim, busy**: during the burst, from a task's finish to the next claim — the k-th claim
  after the first N paired with the (k − N)-th finish — i.e. what the queue adds between two tasks.

The cluster keeps PostgreSQL's durability defaults. The media are one local folder shared by all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import ServerProcess, wait_until  # noqa: E402
from tests.pg import PostgresCluster  # noqa: E402

BODY = {"model": "mj-v7", "prompt": "a lighthouse at dusk"}
ENV = {
    "OPENMJ_SECRET_KEY": "bench-secret",
    "OPENMJ_TRANSLATION_MODEL": "none",
    "OPENMJ_CAPTION_MODEL": "none",
    "OPENMJ_VIDEO_MODEL": "none",
    "OPENMJ_MODEL": "tiny",
    "HF_HUB_OFFLINE": "1",
}


def _workers(data: Path, dsn: str, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, **ENV, "OPENMJ_DATABASE_URL": dsn}
    procs = []
    for i in range(count):
        with (logs / f"worker-{count}-{i}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "openmj.cli", "worker", "--data-dir", str(data)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def ready() -> bool:
        for i, p in enumerate(procs):
            if p.poll() is not None:
                raise RuntimeError((logs / f"worker-{count}-{i}.log").read_text()[-3000:])
        return all("openmj ready" in (logs / f"worker-{count}-{i}.log").read_text() for i in range(count))

    wait_until(ready, 900, 0.2, f"{count} workers to start")
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def _times(dsn: str, ids: list[str]) -> list[tuple[float, float, float]]:
    """(created_at, started_at, finished_at) of these tasks, as stored."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> list[tuple[float, float, float]]:
        engine = create_async_engine(dsn)
        try:
            async with engine.connect() as conn:
                q = text("SELECT created_at, started_at, finished_at FROM tasks WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                )
                return [tuple(r) for r in (await conn.execute(q, {"ids": ids})).all()]  # type: ignore[misc]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _submit(client: httpx.Client) -> str:
    r = client.post("/v1/images/generations", json=BODY)
    r.raise_for_status()
    return str(r.json()["id"])


def _wait_done(client: httpx.Client, ids: list[str]) -> None:
    def done() -> bool:
        statuses = [client.get(f"/v1/tasks/{i}").json()["status"] for i in ids]
        if "failed" in statuses or "cancelled" in statuses:
            raise RuntimeError(f"a benchmark task did not complete: {statuses}")
        return all(s == "completed" for s in statuses)

    wait_until(done, 1800, 0.2, "the tasks to finish")


def _ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


def one_round(
    data: Path, dsn: str, api: ServerProcess, key: str, count: int, tasks: int, probes: int
) -> dict[str, Any]:
    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    procs = _workers(data, dsn, count, logs)
    try:
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            _wait_done(client, [_submit(client) for _ in range(count)])  # warm-up: one each
            idle = []
            for _ in range(probes):
                time.sleep(1.0)  # the workers are asleep on LISTEN/NOTIFY again
                task_id = _submit(client)
                _wait_done(client, [task_id])
                idle.append(task_id)
            load_before = os.getloadavg()[0]
            burst = [_submit(client) for _ in range(tasks)]
            _wait_done(client, burst)
            load_after = os.getloadavg()[0]
        pickup_idle = [s - c for c, s, _ in _times(dsn, idle)]
        rows = _times(dsn, burst)
        wall = max(f for _, _, f in rows) - min(c for c, _, _ in rows)
        starts = sorted(s for _, s, _ in rows)
        finishes = sorted(f for _, _, f in rows)
        gaps = [starts[k] - finishes[k - count] for k in range(count, len(starts))]
        return {
            "workers": count,
            "tasks": tasks,
            "wall_s": wall,
            "tasks_per_s": tasks / wall,
            "run_s_p50": statistics.median(f - s for _, s, f in rows),
            "pickup_idle_ms_p50": _ms(pickup_idle, 0.5),
            "pickup_idle_ms_max": _ms(pickup_idle, 1.0),
            "next_claim_ms_p50": _ms(gaps, 0.5) if gaps else None,
            "next_claim_ms_p95": _ms(gaps, 0.95) if gaps else None,
            "load": (load_before, load_after),
        }
    finally:
        _stop(procs)


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "| Worker processes | Tasks | Wall (s) | Tasks/s | Run p50 (s) | Pickup idle p50 / max (ms) "
        "| Next claim, busy p50 / p95 (ms) | Load average (before → after) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        claim = (
            f"{r['next_claim_ms_p50']:.0f} / {r['next_claim_ms_p95']:.0f}"
            if r["next_claim_ms_p50"] is not None
            else "–"
        )
        out.append(
            f"| {r['workers']} | {r['tasks']} | {r['wall_s']:.1f} | {r['tasks_per_s']:.2f} "
            f"| {r['run_s_p50']:.2f} "
            f"| {r['pickup_idle_ms_p50']:.0f} / {r['pickup_idle_ms_max']:.0f} | {claim} "
            f"| {r['load'][0]:.1f} → {r['load'][1]:.1f} |"
        )
    return "\n".join(out)


def run(tasks: int = 8, counts: tuple[int, ...] = (1, 2, 4), probes: int = 5) -> dict[str, Any]:
    from openmj.engines.local.tiny import ensure_tiny

    tmp = Path(tempfile.mkdtemp(prefix="openmj-bench-workers-"))
    data = tmp / "data"  # one data folder for every process: the media and the tiny model, built once
    ensure_tiny(data / "models")
    cluster = PostgresCluster()
    dsn = cluster.start(durable=True)
    api = ServerProcess(data, "tiny", args=("--no-worker",), OPENMJ_DATABASE_URL=dsn, **ENV)
    try:
        api.start(600)
        created = subprocess.run(
            [sys.executable, "-m", "openmj.cli", "keys", "create", "--credits", "1e12",
             "--data-dir", str(data)],
            capture_output=True, text=True, check=True, env={**os.environ, **ENV, "OPENMJ_DATABASE_URL": dsn},
        )  # fmt: skip
        key = created.stdout.strip().splitlines()[-1]
        rows = [one_round(data, dsn, api, key, n, tasks, probes) for n in counts]
    finally:
        api.stop()
        cluster.stop()
    return {"rows": rows, "markdown": markdown(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=8, help="tasks in each burst")
    ap.add_argument("--workers", default="1,2,4", help="worker process counts")
    ap.add_argument("--probes", type=int, default=5, help="idle pickups measured per row")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.tasks, tuple(int(n) for n in args.workers.split(",")), args.probes)
    print(result["markdown"])


if __name__ == "__main__":
    main()
