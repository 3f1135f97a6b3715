"""The store under size: bulk reads at 100,000 tasks, and create/read throughput with 1,000,000
finished tasks in the table next to an empty one.

    python bench/bench_store.py [--bulk-rows 100000] [--big-rows 1000000] [--seconds 8]

Rows are seeded straight into SQLite (finished imagine tasks with four results, as a worker stores
them), then `openmj serve --no-worker` is started on that folder:

- bulk: midjourney-proxy `POST /mj/task/list-by-condition` with 1,000 ids and EvoLink
  `POST /v1/tasks/batch` with 50, each timed 20 times from a client on loopback (median and max);
- growth: `hey` create and read against an empty store and against the big one, alternately.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hey  # noqa: E402
from bench.bench_api import BODY, LIMITS, openmj_cli  # noqa: E402


def prepare(folder: Path, env: dict[str, str]) -> str:
    """A migrated data folder with one key; returns the key's secret."""
    created = subprocess.run(
        openmj_cli("keys", "create", "--data-dir", str(folder), "--credits", "1e15"),
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return created.stdout.strip().splitlines()[-1]


def seed(folder: Path, rows: int, owner: str | None = None, status: str = "completed") -> list[str]:
    """`rows` tasks (finished, or `status` "processing": running at 40 %), straight into the
    database (one transaction per 20,000)."""
    db = sqlite3.connect(folder / "openmj.db")
    owner = owner or db.execute("SELECT id FROM api_keys LIMIT 1").fetchone()[0]
    now = time.time()
    results = json.dumps(
        [{"name": f"{i}.png", "width": 1024, "height": 576, "seed": 100 + i, "content_type": "image/png"}
         for i in range(4)]
    )  # fmt: skip
    grid = json.dumps(
        {"name": "grid.png", "width": 2048, "height": 1152, "seed": None, "content_type": "image/png"}
    )
    spec = json.dumps({"prompt": {"text": "a lighthouse at dusk", "params": {"ar": "16:9", "stylize": 250},
                                  "effective_model": "7"}, "options": {}, "refs": {}})  # fmt: skip
    cols = (
        "id, owner, dialect, operation, model, status, progress, prompt, spec, request, speed, priority, "
        "seed, "
        "created_at, started_at, finished_at, updated_at, results, grid, credits_reserved, credits_charged, "
        "user_group, cancel_requested, attempts, media_expires_at, media_deleted"
    )
    sql = f"INSERT INTO tasks ({cols}) VALUES ({', '.join('?' * 26)})"
    ids: list[str] = []
    for start in range(0, rows, 20_000):
        batch = []
        for i in range(start, min(rows, start + 20_000)):
            task_id = f"task-unified-{int(now) - rows + i}-{uuid.uuid4().hex[:8]}"
            ids.append(task_id)
            t = now - rows + i
            done = status == "completed"
            batch.append((task_id, owner, "mjproxy", "imagine", "midjourney", status, 100 if done else 40,
                          "a lighthouse at dusk --ar 16:9", spec, '{"state": ""}', "fast", 20, 1000 + i,
                          t, t + 1, t + 6 if done else None, t + 6, results if done else "[]",
                          grid if done else None, 8.0, 8.0 if done else 0.0, "default", 0, 1,
                          now + 86400 if done else None, 0))  # fmt: skip
        db.executemany(sql, batch)
        db.commit()
    db.close()
    return ids


def time_calls(fn: Any, n: int = 20) -> dict[str, float]:
    t = time.perf_counter()
    fn()  # the first call: nothing cached yet
    first = (time.perf_counter() - t) * 1000
    took = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t) * 1000)
    return {"first_ms": first, "median_ms": statistics.median(took), "max_ms": max(took)}


def bulk(tmp: Path, rows: int, env: dict[str, str]) -> dict[str, Any]:
    folder = tmp / "bulk"
    key = prepare(folder, env)
    ids = seed(folder, rows - 1000)
    running = seed(folder, 1000, status="processing")  # what a relay polls: tasks still in flight
    server, url, key = _serve(tmp, folder, env, key)
    try:
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            pick = ids[-1000:]
            r = c.post("/mj/task/list-by-condition", json={"ids": pick})
            assert r.status_code == 200 and len(r.json()) == 1000, r.text[:300]
            mj = time_calls(lambda: c.post("/mj/task/list-by-condition", json={"ids": pick}))
            fifty = ids[-50:]
            assert len(c.post("/v1/tasks/batch", json={"task_ids": fifty}).json()["data"]) == 50
            evo = time_calls(lambda: c.post("/v1/tasks/batch", json={"task_ids": fifty}))
            live = time_calls(lambda: c.post("/mj/task/list-by-condition", json={"ids": running}))
        return {
            "rows": rows,
            "list_by_condition_1000": mj,
            "batch_50": evo,
            "list_by_condition_running": live,
        }
    finally:
        server.stop()


def _serve(tmp: Path, folder: Path, env: dict[str, str], key: str) -> tuple[Any, str, str]:
    from bench.bench_api import Server
    from tests.live import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = openmj_cli("serve", "--no-worker", "--data-dir", str(folder), "--port", str(port))
    return Server(cmd, env, url, tmp / f"{folder.name}.log"), url, key


def growth(tmp: Path, rows: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    empty, big = tmp / "empty", tmp / "big"
    keys = {"empty": prepare(empty, env), "big": prepare(big, env)}
    t = time.perf_counter()
    seed(big, rows)
    out["seed_seconds"] = time.perf_counter() - t
    body = json.dumps(BODY).encode()
    for name, folder in (("empty", empty), ("big", big), ("empty-again", empty), ("big-again", big)):
        server, url, key = _serve(tmp, folder, env, keys[name.split("-")[0]])
        auth = {"Authorization": f"Bearer {key}"}
        try:
            create = hey.run(f"{url}/v1/images/generations", seconds=seconds, concurrency=16,
                             method="POST", body=body, headers=auth)  # fmt: skip
            task_id = httpx.get(f"{url}/v1/tasks?page_size=1", headers=auth, timeout=60).json()["data"][0][
                "id"
            ]
            read = hey.run(f"{url}/v1/tasks/{task_id}", seconds=seconds, concurrency=16, headers=auth)
            out[name] = {"create": create.summary(), "read": read.summary()}
        finally:
            server.stop()
    return out


def run(bulk_rows: int = 100_000, big_rows: int = 1_000_000, seconds: float = 8) -> dict[str, Any]:
    env = {**os.environ, **LIMITS}
    with tempfile.TemporaryDirectory(prefix="openmj-bench-store-") as d:
        tmp = Path(d)
        result: dict[str, Any] = {"bulk": bulk(tmp, bulk_rows, env)}
        if big_rows:
            result["growth"] = growth(tmp, big_rows, seconds, env)
    b = result["bulk"]
    lines = [
        f"Bulk reads with {b['rows']:,} tasks in the store (20 timed calls each, after the first):",
        "",
        "| request | first call ms | median ms | max ms |",
        "|---|---|---|---|",
        *[
            f"| {label} | {b[k]['first_ms']:.1f} | {b[k]['median_ms']:.1f} | {b[k]['max_ms']:.1f} |"
            for label, k in (
                ("midjourney-proxy list-by-condition, 1,000 finished", "list_by_condition_1000"),
                ("midjourney-proxy list-by-condition, 1,000 running", "list_by_condition_running"),
                ("EvoLink /v1/tasks/batch, 50 finished", "batch_50"),
            )
        ],
    ]
    if "growth" in result:
        g = result["growth"]

        def best(kind: str, name: str) -> float:
            return max(g[name][kind]["rps"], g[f"{name}-again"][kind]["rps"])

        lines += [
            "",
            f"Throughput with {big_rows:,} finished tasks in the table (seeded in {g['seed_seconds']:.0f} s) "
            "next to an empty one, hey -c 16, best of two alternating runs each:",
            "",
            "| | create req/s | read req/s |",
            "|---|---|---|",
            f"| empty store | {best('create', 'empty'):,.0f} | {best('read', 'empty'):,.0f} |",
            f"| {big_rows:,} finished tasks | {best('create', 'big'):,.0f} | {best('read', 'big'):,.0f} |",
            f"| big ÷ empty | {best('create', 'big') / best('create', 'empty'):.2f} | "
            f"{best('read', 'big') / best('read', 'empty'):.2f} |",
        ]
    result["markdown"] = "\n".join(lines)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bulk-rows", type=int, default=100_000)
    ap.add_argument("--big-rows", type=int, default=1_000_000, help="0 skips the growth benchmark")
    ap.add_argument("--seconds", type=float, default=8)
    args = ap.parse_args()
    print(run(args.bulk_rows, args.big_rows, args.seconds)["markdown"])


if __name__ == "__main__":
    main()
