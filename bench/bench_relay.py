"""What the gateway adds to a relayed task, and what 500 relayed tasks in flight cost.

1. Overhead: an upstream openmj (real server on loopback, the `tiny` model on the CPU, in-process
   worker) and a gateway openmj relaying to it (`--providers`, one kie provider, polling every
   0.1 s). A client POSTs an EvoLink imagine (`a lighthouse --seed N`) and polls every 50 ms, either
   straight to the upstream or through the gateway, alternating, one task at a time: POST sent →
   the poll that sees `completed`. Through the gateway that includes its submit, the upstream's
   own job, the gateway's polling, fetching the four PNGs and storing them (rehosting).
2. In flight: a gateway relaying to a midjourney-proxy upstream that holds every task until told
   to finish (a scripted loopback server); 500 EvoLink imagines are submitted, the benchmark waits
   until all 500 are at the upstream, and reads the process's resident memory (VmRSS) before and
   with them in flight; then they are released and the time to complete all 500 is measured,
   with the upstream's count of status reads (bulk `list-by-condition` calls and single fetches).

Run:

    HF_HUB_OFFLINE=1 python bench/bench_relay.py [--runs 3] [--inflight 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def provider_toml(name: str, dialect: str, url: str, key: str) -> str:
    return (
        f'[[providers]]\nname = "{name}"\ndialect = "{dialect}"\nbase_url = "{url}"\nkey = "{key}"\n'
        "poll_s = 0.1\ntimeout_s = 30\nmax_concurrency = 1000\n"
    )


def timed_imagine(client: Any, seed: int) -> float:
    start = time.perf_counter()
    body = {"model": "mj-v7", "prompt": f"a lighthouse --seed {seed}"}
    task_id = client.post("/v1/images/generations", json=body).json()["id"]
    while True:
        status = client.get(f"/v1/tasks/{task_id}").json()["status"]
        if status in ("completed", "failed"):
            assert status == "completed", status
            return time.perf_counter() - start
        time.sleep(0.05)


def overhead(tmp: Path, runs: int) -> dict[str, Any]:
    from openmj.engines import build_engine
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import PRESETS
    from tests.live import LiveServer, make_settings

    engine = LocalEngine(PRESETS["tiny"], tmp / "models", device="cpu")
    engine.load()
    with LiveServer(make_settings(tmp / "up"), engine) as up:
        up_key = up.create_key(credits=1e9)
        path = tmp / "providers.toml"
        path.write_text(provider_toml("up", "kie", up.url, up_key))
        settings = make_settings(tmp / "gw", providers_file=path)
        with LiveServer(settings, build_engine(settings)) as gw:
            gw_key = gw.create_key(credits=1e9)
            direct, relayed = [], []
            with up.client(up_key) as cu, gw.client(gw_key) as cg:
                timed_imagine(cu, 0), timed_imagine(cg, 0)  # warm-up
                for i in range(runs):
                    direct.append(timed_imagine(cu, 10 + i))
                    relayed.append(timed_imagine(cg, 10 + i))
    d, r = statistics.median(direct), statistics.median(relayed)
    return {"direct_s": round(d, 3), "through_gateway_s": round(r, 3), "ratio": round(r / d, 3), "runs": runs}


def in_flight(tmp: Path, count: int) -> dict[str, Any]:
    from openmj.config import Settings
    from openmj.engines import build_engine
    from tests.live import LiveServer, make_settings, wait_until
    from tests.relaying import Scripted

    with Scripted("slow") as hold:
        path = tmp / "hold.toml"
        path.write_text(provider_toml("hold", "mjproxy", hold.url(""), "k"))
        # the production lease and heartbeat (the tests' 5 s lease is for quick crash tests)
        settings = make_settings(
            tmp / "gw2",
            providers_file=path,
            relay_concurrency=count + 12,
            lease_seconds=Settings().lease_seconds,
            heartbeat_seconds=Settings().heartbeat_seconds,
        )
        with LiveServer(settings, build_engine(settings)) as gw:
            key = gw.create_key(credits=1e9)
            with gw.client(key) as c:
                before = rss_mib()
                ids = [
                    c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": f"fox {i}"}).json()[
                        "id"
                    ]
                    for i in range(count)
                ]
                wait_until(lambda: hold.count >= count, 600, 0.2, f"{count} tasks at the upstream")
                held = rss_mib()
                start = time.perf_counter()
                hold.release.set()

                final: dict[str, int] = {}

                def all_done() -> bool:
                    final.clear()
                    for start in range(0, len(ids), 50):  # EvoLink's batch read takes 50 ids
                        chunk = ids[start : start + 50]
                        for t in c.post("/v1/tasks/batch", json={"task_ids": chunk}).json()["data"]:
                            final[t["status"]] = final.get(t["status"], 0) + 1
                    return final.get("completed", 0) + final.get("failed", 0) == len(ids)

                wait_until(all_done, 900, 0.5, f"every task finished (seen {final})")
                drain = time.perf_counter() - start
                bulk_reads = len(hold.hits("/mj/task/list-by-condition"))
                single_reads = len([p for p in hold.paths() if p.endswith("/fetch")])
    return {
        "in_flight": count,
        "rss_before_mib": round(before, 1),
        "rss_in_flight_mib": round(held, 1),
        "per_task_kib": round((held - before) * 1024 / count, 1),
        "drain_s": round(drain, 1),
        "tasks_per_s_draining": round(count / drain, 1),
        "completed": final.get("completed", 0),
        "failed": final.get("failed", 0),
        # every task is read in one bulk list-by-condition call a tick, never one by one
        "upstream_bulk_reads": bulk_reads,
        "upstream_single_reads": single_reads,
    }


def run(runs: int = 3, inflight: int = 500) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="openmj-bench-relay-"))
    return {"overhead": overhead(tmp, runs), "in_flight": in_flight(tmp, inflight)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=500)
    args = ap.parse_args()
    print(json.dumps(run(args.runs, args.inflight), indent=2))


if __name__ == "__main__":
    main()
