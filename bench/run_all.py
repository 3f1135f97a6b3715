"""Every openmj benchmark, printed as the markdown tables of docs/benchmarks.md.

    HF_HUB_OFFLINE=1 python bench/run_all.py [--seconds 10] [--concurrency 16] [--runs 5] [--json FILE]
                                             [--big-rows 1000000] [--skip-postgres]

(`make bench` runs it.) The API benchmark starts its own servers on free loopback ports; the
engine benchmark builds the tiny model into a temporary folder. Nothing needs the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    bench_api,
    bench_engine,
    bench_pg,
    bench_relay,
    bench_store,
    bench_video,
    bench_words,
    bench_workers,
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")]
        cpu = names[0] if names else cpu
    except (OSError, subprocess.CalledProcessError):
        pass
    mem = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(ln for ln in meminfo if ln.startswith("MemTotal")).split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="API benchmark: load duration per row")
    ap.add_argument("--concurrency", type=int, default=16, help="API benchmark: concurrent clients")
    ap.add_argument("--runs", type=int, default=5, help="engine benchmark: timed runs per side")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    ap.add_argument("--big-rows", type=int, default=1_000_000, help="store growth: finished tasks seeded")
    ap.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL rows")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    print(f"openmj benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}\n")
    results: dict[str, Any] = {}

    print("## API: task create and status read (worker off)\n", flush=True)
    results["api"] = bench_api.run(args.seconds, args.concurrency, rounds=2)
    print(results["api"]["markdown"] + "\n", flush=True)

    print("## Bulk reads and a growing store (SQLite)\n", flush=True)
    results["store"] = bench_store.run(100_000, args.big_rows, min(args.seconds, 8))
    print(results["store"]["markdown"] + "\n", flush=True)

    if not args.skip_postgres:
        print("## API on PostgreSQL\n", flush=True)
        results["postgres"] = bench_pg.run(min(args.seconds, 8), args.concurrency)
        print(results["postgres"]["markdown"] + "\n", flush=True)

    if not args.skip_postgres:
        print("## Workers on PostgreSQL: throughput and queue pickup (tiny model)\n", flush=True)
        results["workers"] = bench_workers.run()
        print(results["workers"]["markdown"] + "\n", flush=True)

    print("## Engine overhead (tiny model, CPU)\n", flush=True)
    results["engine"] = bench_engine.run(args.runs)
    print(results["engine"]["markdown"], flush=True)

    print("\n## Video overhead (tiny video model, CPU)\n", flush=True)
    results["video"] = bench_video.run(max(3, args.runs // 2))
    print(results["video"]["markdown"], flush=True)

    print("\n## Translation, describe, shorten (tiny models, CPU)\n", flush=True)
    results["words"] = bench_words.run(max(5, args.runs))
    print(json.dumps({k: results["words"][k] for k in ("translation", "describe", "shorten")}), flush=True)

    print("\n## Relay (gateway) overhead and 500 tasks in flight\n", flush=True)
    results["relay"] = bench_relay.run(3, 500)
    print(json.dumps(results["relay"], indent=2), flush=True)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
