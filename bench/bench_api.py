"""Task-create and status-read throughput/latency of openmj (worker off) next to a bare FastAPI+SQLite app.

Both servers run as subprocesses on 127.0.0.1 (one uvicorn process each, SQLite in WAL mode),
driven by the same closed-loop load generator (bench/loadgen.py) in this process:

- openmj: `openmj serve --no-worker` on a fresh data dir, one key with ample credits and no
  practical rate/concurrency limits; POST /v1/images/generations (EvoLink, `mj-v7`), then
  GET /v1/tasks/{id} over the 100 newest of the tasks just created (all pending: no worker).
- bare: bench/bare_app.py, one INSERT per POST and one primary-key SELECT per GET.

Run:

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
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult, run_load  # noqa: E402
from tests.live import free_port, wait_healthy  # noqa: E402

BODY = {"model": "mj-v7", "prompt": "a lighthouse at dusk --ar 16:9 --s 250"}


class Server:
    """A server subprocess whose output goes to a log shown if it fails to start."""

    def __init__(self, cmd: list[str], env: dict[str, str], url: str, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, 120, self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{cmd[2:4]} did not start: {exc}\n{log.read_text()[-3000:]}") from None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc; NaN elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def load(self, url: str, make_request: Any, conc: int, seconds: float, **kw: Any) -> LoadResult:
        """Run the load generator against this server, recording the server's CPU time per request."""
        before = self.cpu_seconds()
        result = asyncio.run(run_load(url, make_request, concurrency=conc, seconds=seconds, **kw))
        result.server_cpu_s = self.cpu_seconds() - before
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _openmj(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "openmj.cli", *args]


def bench_openmj(tmp: Path, seconds: float, conc: int) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OPENMJ_DEFAULT_RPM": "100000000",
        "OPENMJ_DEFAULT_CONCURRENCY": "100000000",
        "OPENMJ_QUEUE_CAP": "100000000",
        "OPENMJ_LOG_LEVEL": "WARNING",
    }
    data = tmp / "openmj"
    created = subprocess.run(
        _openmj(["keys", "create", "--data-dir", str(data), "--credits", "1e12"]),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    server = Server(
        _openmj(["serve", "--no-worker", "--data-dir", str(data), "--port", str(port)]),
        env,
        url,
        tmp / "openmj.log",
    )
    try:
        headers = {"Authorization": f"Bearer {key}"}
        create = server.load(
            url, lambda i: ("POST", "/v1/images/generations", {"json": BODY}), conc, seconds, headers=headers
        )
        listing = httpx.get(f"{url}/v1/tasks?page_size=100", headers=headers, timeout=30).json()
        ids = [t["id"] for t in listing["data"]]
        read = server.load(
            url, lambda i: ("GET", f"/v1/tasks/{ids[i % len(ids)]}", {}), conc, seconds, headers=headers
        )
        return create, read
    finally:
        server.stop()


def bench_bare(tmp: Path, seconds: float, conc: int) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(
        [sys.executable, str(ROOT / "bench" / "bare_app.py"), str(tmp / "bare.db"), str(port)],
        dict(os.environ),
        url,
        tmp / "bare.log",
    )
    try:
        body = json.dumps(BODY)
        create = server.load(url, lambda i: ("POST", "/rows", {"content": body}), conc, seconds)
        rid = httpx.post(url + "/rows", content=body, timeout=30).json()["id"]
        read = server.load(url, lambda i: ("GET", f"/rows/{rid}", {}), conc, seconds)
        return create, read
    finally:
        server.stop()


def run(seconds: float = 10, concurrency: int = 16) -> dict[str, Any]:
    """Both servers, one after the other; returns the results and the markdown table."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="openmj-bench-api-") as d:
        tmp = Path(d)
        o_create, o_read = bench_openmj(tmp, seconds, concurrency)
        b_create, b_read = bench_bare(tmp, seconds, concurrency)
    load_after = os.getloadavg()[0]
    lines = [
        f"{concurrency} concurrent clients, {seconds:g} s per row, loopback, {os.cpu_count()} cores "
        f"(load average {load_before:.1f} before, {load_after:.1f} after)",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | mean ms | server CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|",
        o_create.row("openmj POST /v1/images/generations (worker off)"),
        b_create.row("bare FastAPI POST, one SQLite insert"),
        o_read.row("openmj GET /v1/tasks/{id}"),
        b_read.row("bare FastAPI GET, one SQLite read"),
        "",
        f"openmj ÷ bare throughput: create {o_create.rps / b_create.rps:.2f}, "
        f"read {o_read.rps / b_read.rps:.2f}; server CPU per request: "
        f"create {o_create.cpu_ms / b_create.cpu_ms:.1f}×, read {o_read.cpu_ms / b_read.cpu_ms:.1f}×",
    ]
    return {
        "create": {"openmj": o_create.summary(), "bare": b_create.summary()},
        "read": {"openmj": o_read.summary(), "bare": b_read.summary()},
        "markdown": "\n".join(lines),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="load duration per row")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent closed-loop clients")
    args = ap.parse_args()
    print(run(args.seconds, args.concurrency)["markdown"])


if __name__ == "__main__":
    main()
