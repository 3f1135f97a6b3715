"""What one /metrics scrape costs with a big store (docs/metrics.md).

    python bench/bench_metrics.py [--rows 1000000]

`rows` finished imagine tasks (one a second, so the last hour's 3,600 fall in the latency window)
and a ledger entry for each are seeded straight into SQLite, then `openmj serve --no-worker` is
started on that folder with the scrape cache off, and `GET /metrics` is timed 20 times after the
first (which reads the whole ledger once).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_api import LIMITS  # noqa: E402
from bench.bench_store import _serve, prepare, seed, time_calls  # noqa: E402


def seed_ledger(folder: Path, rows: int) -> None:
    """A reserve entry per task, as submit writes them (the first scrape reads them all)."""
    db = sqlite3.connect(folder / "openmj.db")
    owner = db.execute("SELECT id FROM api_keys LIMIT 1").fetchone()[0]
    now = time.time() - 600  # settled: older than the watermark's margin
    sql = "INSERT INTO ledger (key_id, task_id, kind, amount, created_at) VALUES (?, ?, 'reserve', -8.0, ?)"
    for start in range(0, rows, 50_000):
        batch = [(owner, f"t{i}", now - rows + i) for i in range(start, min(rows, start + 50_000))]
        db.executemany(sql, batch)
        db.commit()
    db.close()


def run(rows: int = 1_000_000) -> dict[str, Any]:
    env = {**os.environ, **LIMITS, "OPENMJ_METRICS_CACHE_SECONDS": "0"}
    with tempfile.TemporaryDirectory(prefix="openmj-bench-metrics-") as d:
        tmp = Path(d)
        folder = tmp / "big"
        key = prepare(folder, env)
        seed(folder, rows)
        seed_ledger(folder, rows)
        server, url, _ = _serve(tmp, folder, env, key)
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                timing = time_calls(lambda: c.get("/metrics").raise_for_status())
                size = len(c.get("/metrics").content)
        finally:
            server.stop()
    markdown = (
        f"/metrics with {rows:,} tasks and {rows:,} ledger rows (SQLite, cache off, 20 timed scrapes after "
        f"the first): first {timing['first_ms']:.0f} ms, median {timing['median_ms']:.1f} ms, "
        f"max {timing['max_ms']:.1f} ms; {size:,} bytes."
    )
    return {"rows": rows, **timing, "bytes": size, "markdown": markdown}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    print(run(ap.parse_args().rows)["markdown"])


if __name__ == "__main__":
    main()
