"""Task-create and status-read throughput/latency of openmj (worker off) next to a bare FastAPI+SQLite app.

Both servers run as subprocesses on 127.0.0.1 (one uvicorn process each), driven by the same
closed-loop load generator in this process. Run:

    python bench/bench_api.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import LoadResult, run_load  # noqa: E402
from tests.live import free_port, wait_healthy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(url, 120, proc) if "openmj" in " ".join(cmd) else _wait_port(url)
    return proc


def _wait_port(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url + "/rows/x", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def bench_openmj(tmp: Path, seconds: float, conc: int) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OPENMJ_DEFAULT_RPM": "100000000",
        "OPENMJ_DEFAULT_CONCURRENCY": "100000000",
        "OPENMJ_QUEUE_CAP": "100000000",
        "OPENMJ_LOG_LEVEL": "WARNING",
    }
    data = tmp / "openmj"
    key = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "openmj.cli",
                "keys",
                "create",
                "--data-dir",
                str(data),
                "--credits",
                "1e12",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    proc = start(
        [
            sys.executable,
            "-m",
            "openmj.cli",
            "serve",
            "--no-worker",
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        env,
        url,
    )
    try:
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": "mj-v7", "prompt": "a lighthouse at dusk --ar 16:9 --s 250"}
        create = asyncio.run(
            run_load(
                url,
                lambda i: ("POST", "/v1/images/generations", {"json": body}),
                concurrency=conc,
                seconds=seconds,
                headers=headers,
            )
        )
        ids = [t["id"] for t in httpx.get(f"{url}/v1/tasks?page_size=100", headers=headers).json()["data"]]
        read = asyncio.run(
            run_load(
                url,
                lambda i: ("GET", f"/v1/tasks/{ids[i % len(ids)]}", {}),
                concurrency=conc,
                seconds=seconds,
                headers=headers,
            )
        )
        return create, read
    finally:
        proc.terminate()
        proc.wait(30)


def bench_bare(tmp: Path, seconds: float, conc: int) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(
        [sys.executable, str(ROOT / "bench" / "bare_app.py"), str(tmp / "bare.db"), str(port)],
        dict(os.environ),
        url,
    )
    try:
        body = json.dumps({"model": "mj-v7", "prompt": "a lighthouse at dusk --ar 16:9 --s 250"})
        create = asyncio.run(
            run_load(url, lambda i: ("POST", "/rows", {"content": body}), concurrency=conc, seconds=seconds)
        )
        rid = httpx.post(url + "/rows", content=body).json()["id"]
        read = asyncio.run(
            run_load(url, lambda i: ("GET", f"/rows/{rid}", {}), concurrency=conc, seconds=seconds)
        )
        return create, read
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        o_create, o_read = bench_openmj(tmp, args.seconds, args.concurrency)
        b_create, b_read = bench_bare(tmp, args.seconds, args.concurrency)
    print(
        f"{args.concurrency} concurrent clients, {args.seconds:g} s each, loopback, {os.cpu_count()} cores\n"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | mean ms | errors |")
    print("|---|---|---|---|---|---|")
    print(o_create.row("openmj POST /v1/images/generations (worker off)"))
    print(b_create.row("bare FastAPI POST, one SQLite insert"))
    print(o_read.row("openmj GET /v1/tasks/{id}"))
    print(b_read.row("bare FastAPI GET, one SQLite read"))
    print(
        f"\ncreate: openmj/bare throughput = {o_create.rps / b_create.rps:.2f}; "
        f"read: {o_read.rps / b_read.rps:.2f}"
    )


if __name__ == "__main__":
    main()
