"""Task create and status read: openmj (worker off) next to a bare FastAPI + SQLite app, in one run.

    python bench/bench_api.py [--seconds 10] [--concurrency 16] [--rounds 2] [--database sqlite|postgres]

Each round starts openmj (`openmj serve --no-worker`, fresh data folder, one key with limits out
of the way) and then the bare app (bench/bare_app.py: authenticates a hashed key, one SQLite
insert or primary-key select), each as its own process on 127.0.0.1, and drives each with `hey`
(a separate process: the load costs the servers nothing). Rounds alternate, so both see the same
machine; the ratios of the best round of each are printed.
"""

from __future__ import annotations

import argparse
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

from bench import hey  # noqa: E402
from tests.live import free_port, wait_healthy  # noqa: E402

BODY = {"model": "mj-v7", "prompt": "a lighthouse at dusk --ar 16:9 --s 250"}
LIMITS = {
    "OPENMJ_DEFAULT_RPM": "1000000000",
    "OPENMJ_DEFAULT_CONCURRENCY": "1000000000",
    "OPENMJ_QUEUE_CAP": "1000000000",
    "OPENMJ_LOG_LEVEL": "WARNING",
    "OPENMJ_TRANSLATION_MODEL": "none",  # API-only nodes translate only when asked (docs/prompt.md)
    "HF_HUB_OFFLINE": "1",
}


class Server:
    """A server subprocess whose output goes to a log shown if it fails to start."""

    def __init__(self, cmd: list[str], env: dict[str, str], url: str, log: Path) -> None:
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, 120, self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{cmd[2:4]} did not start: {exc}\n{log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def openmj_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "openmj.cli", *args]


def start_openmj(tmp: Path, env: dict[str, str], name: str = "openmj") -> tuple[Server, str, str]:
    """An `openmj serve --no-worker` and a key for it: (server, url, key)."""
    data, port = tmp / name, free_port()
    created = subprocess.run(
        openmj_cli("keys", "create", "--data-dir", str(data), "--credits", "1e15"),
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    url = f"http://127.0.0.1:{port}"
    cmd = openmj_cli("serve", "--no-worker", "--data-dir", str(data), "--port", str(port))
    return Server(cmd, env, url, tmp / f"{name}.log"), url, key


def bench_openmj(tmp: Path, seconds: float, conc: int, env: dict[str, str]) -> dict[str, hey.HeyResult]:
    server, url, key = start_openmj(tmp, env)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        body = json.dumps(BODY).encode()
        create = hey.run(f"{url}/v1/images/generations", seconds=seconds, concurrency=conc,
                         method="POST", body=body, headers=auth)  # fmt: skip
        task_id = httpx.get(f"{url}/v1/tasks?page_size=1", headers=auth, timeout=30).json()["data"][0]["id"]
        read = hey.run(f"{url}/v1/tasks/{task_id}", seconds=seconds, concurrency=conc, headers=auth)
        return {"create": create, "read": read}
    finally:
        server.stop()


def bench_bare(tmp: Path, seconds: float, conc: int) -> dict[str, hey.HeyResult]:
    port, key = free_port(), "sk-bare-bench-key"
    url = f"http://127.0.0.1:{port}"
    db = tmp / f"bare-{port}.db"
    cmd = [sys.executable, str(ROOT / "bench" / "bare_app.py"), str(db), str(port), key]
    server = Server(cmd, dict(os.environ), url, tmp / "bare.log")
    auth = {"Authorization": f"Bearer {key}"}
    try:
        body = json.dumps(BODY).encode()
        create = hey.run(
            f"{url}/rows", seconds=seconds, concurrency=conc, method="POST", body=body, headers=auth
        )
        rid = httpx.post(f"{url}/rows", content=body, headers=auth, timeout=30).json()["id"]
        read = hey.run(f"{url}/rows/{rid}", seconds=seconds, concurrency=conc, headers=auth)
        return {"create": create, "read": read}
    finally:
        server.stop()


def _best(rounds: list[dict[str, hey.HeyResult]], kind: str) -> hey.HeyResult:
    return max((r[kind] for r in rounds), key=lambda x: x.rps)


def run(seconds: float = 10, concurrency: int = 16, rounds: int = 2) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    env = {**os.environ, **LIMITS}
    ours: list[dict[str, hey.HeyResult]] = []
    bare: list[dict[str, hey.HeyResult]] = []
    with tempfile.TemporaryDirectory(prefix="openmj-bench-api-") as d:
        tmp = Path(d)
        for i in range(rounds):
            here = tmp / f"round-{i}"
            here.mkdir()
            ours.append(bench_openmj(here, seconds, concurrency, env))
            bare.append(bench_bare(here, seconds, concurrency))
    load_after = os.getloadavg()[0]
    rows = []
    out: dict[str, Any] = {"rounds": []}
    for kind, ours_name, bare_name in (
        ("create", "openmj POST /v1/images/generations", "bare POST (hashed key, one insert)"),
        ("read", "openmj GET /v1/tasks/{id}", "bare GET (hashed key, one primary-key select)"),
    ):
        o, b = _best(ours, kind), _best(bare, kind)
        rows.append(f"| {ours_name} | {o.rps:,.0f} | {o.p50_ms:.1f} | {o.p99_ms:.1f} | {o.bad} |")
        rows.append(f"| {bare_name} | {b.rps:,.0f} | {b.p50_ms:.1f} | {b.p99_ms:.1f} | {b.bad} |")
        out[kind] = {"openmj": o.summary(), "bare": b.summary(), "ratio": o.rps / b.rps,
                     "p99_ratio": o.p99_ms / b.p99_ms}  # fmt: skip
    for o, b in zip(ours, bare, strict=True):
        out["rounds"].append(
            {k: {"openmj": o[k].summary(), "bare": b[k].summary()} for k in ("create", "read")}
        )
    lines = [
        f"hey -c {concurrency} -z {seconds:g}s, loopback, {os.cpu_count()} cores, "
        f"{rounds} alternating rounds, "
        f"best of each (load average {load_before:.1f} before, {load_after:.1f} after)",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | non-200 |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"openmj ÷ bare throughput: **create {out['create']['ratio']:.2f}**, "
        f"**read {out['read']['ratio']:.2f}**; "
        f"p99 openmj ÷ bare: create {out['create']['p99_ratio']:.2f}, read {out['read']['p99_ratio']:.2f}",
    ]
    out["markdown"] = "\n".join(lines)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="hey duration per row")
    ap.add_argument("--concurrency", type=int, default=16, help="hey -c")
    ap.add_argument("--rounds", type=int, default=2, help="alternating openmj/bare rounds")
    args = ap.parse_args()
    print(run(args.seconds, args.concurrency, args.rounds)["markdown"])


if __name__ == "__main__":
    main()
