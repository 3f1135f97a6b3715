"""Task create and status read on PostgreSQL: openmj with 1 and 2 API processes next to a bare
FastAPI + asyncpg app with as many processes, on a private cluster this benchmark starts.

    python bench/bench_pg.py [--seconds 8] [--concurrency 16]

The cluster keeps PostgreSQL's defaults for durability (fsync and synchronous commit on), so an
answered create is on disk. With 2 processes each gets its own `hey -c N/2` at once and the rates
are summed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hey  # noqa: E402
from bench.bench_api import BODY, LIMITS, Server, openmj_cli  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.pg import PostgresCluster  # noqa: E402


def _parallel(urls: list[str], conc: int, seconds: float, **kw: Any) -> hey.HeyResult:
    """One hey per URL at the same time; rates summed, latencies the worst of them."""
    results: list[hey.HeyResult] = []
    threads = [
        threading.Thread(
            target=lambda u=u: results.append(hey.run(u, seconds=seconds, concurrency=conc, **kw))
        )
        for u in urls
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hey.HeyResult(
        rps=sum(r.rps for r in results),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        statuses={s: sum(r.statuses.get(s, 0) for r in results) for r in results for s in r.statuses},
        errors=sum(r.errors for r in results),
    )


def openmj_round(tmp: Path, dsn: str, processes: int, seconds: float, conc: int) -> dict[str, hey.HeyResult]:
    env = {**os.environ, **LIMITS, "OPENMJ_DATABASE_URL": dsn, "OPENMJ_SECRET_KEY": "bench-secret"}
    data = tmp / f"openmj-{processes}"
    created = subprocess.run(
        openmj_cli("keys", "create", "--data-dir", str(data), "--credits", "1e15"),
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    servers, urls = [], []
    try:
        for i in range(processes):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = openmj_cli("serve", "--no-worker", "--data-dir", str(data), "--port", str(port))
            servers.append(Server(cmd, env, url, tmp / f"openmj-{processes}-{i}.log"))
            urls.append(url)
        auth = {"Authorization": f"Bearer {key}"}
        per = max(1, conc // processes)
        body = json.dumps(BODY).encode()
        create = _parallel([f"{u}/v1/images/generations" for u in urls], per, seconds,
                           method="POST", body=body, headers=auth)  # fmt: skip
        task_id = httpx.get(f"{urls[0]}/v1/tasks?page_size=1", headers=auth, timeout=30).json()["data"][0][
            "id"
        ]
        read = _parallel([f"{u}/v1/tasks/{task_id}" for u in urls], per, seconds, headers=auth)
        return {"create": create, "read": read}
    finally:
        for s in servers:
            s.stop()


def bare_round(tmp: Path, dsn: str, processes: int, seconds: float, conc: int) -> dict[str, hey.HeyResult]:
    key = "sk-bare-bench-key"
    plain = dsn.replace("postgresql+asyncpg://", "postgresql://")
    servers, urls = [], []
    try:
        for i in range(processes):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [sys.executable, str(ROOT / "bench" / "bare_app.py"), plain, str(port), key]
            servers.append(Server(cmd, dict(os.environ), url, tmp / f"bare-{processes}-{i}.log"))
            urls.append(url)
        auth = {"Authorization": f"Bearer {key}"}
        per = max(1, conc // processes)
        body = json.dumps(BODY).encode()
        create = _parallel([f"{u}/rows" for u in urls], per, seconds, method="POST", body=body, headers=auth)
        rid = httpx.post(f"{urls[0]}/rows", content=body, headers=auth, timeout=30).json()["id"]
        read = _parallel([f"{u}/rows/{rid}" for u in urls], per, seconds, headers=auth)
        return {"create": create, "read": read}
    finally:
        for s in servers:
            s.stop()


def run(seconds: float = 8, concurrency: int = 16) -> dict[str, Any]:
    cluster = PostgresCluster()
    dsn = cluster.start(durable=True)
    out: dict[str, Any] = {}
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="openmj-bench-pg-") as d:
            tmp = Path(d)
            for processes in (1, 2):
                o = openmj_round(tmp, dsn, processes, seconds, concurrency)
                b = bare_round(tmp, dsn, processes, seconds, concurrency)
                out[processes] = {k: {"openmj": o[k].summary(), "bare": b[k].summary(),
                                      "ratio": o[k].rps / b[k].rps} for k in ("create", "read")}  # fmt: skip
                for kind in ("create", "read"):
                    rows.append(
                        f"| {processes} | {kind} | {o[kind].rps:,.0f} | {o[kind].p99_ms:.1f} "
                        f"| {b[kind].rps:,.0f} | {b[kind].p99_ms:.1f} "
                        f"| **{o[kind].rps / b[kind].rps:.2f}** | {o[kind].bad + b[kind].bad} |"
                    )
    finally:
        cluster.stop()
    out["markdown"] = "\n".join(
        [
            f"PostgreSQL (private cluster, fsync on), hey -c {concurrency} split over the processes, "
            f"{seconds:g} s per row, {os.cpu_count()} cores",
            "",
            "| API processes | request | openmj req/s | openmj p99 ms | bare req/s | bare p99 ms | ratio "
            "| non-200 |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    print(run(args.seconds, args.concurrency)["markdown"])


if __name__ == "__main__":
    main()
