"""A small closed-loop HTTP load generator: N concurrent clients for T seconds on loopback.

Each client sends its next request as soon as the previous answer arrived, so the request rate
is what the server sustains at that concurrency. The generator runs in the benchmark's own
process (one event loop, httpx), so on a small machine it shares the CPU with the server under
test; that cost is the same for every server measured with it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[str] = field(default_factory=Counter)
    server_cpu_s: float = float("nan")  # filled in by the caller when it can see the server process

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")

    @property
    def cpu_ms(self) -> float:
        """Server CPU time per request (all its threads), in ms."""
        return self.server_cpu_s / self.requests * 1000 if self.requests else float("nan")

    @property
    def mean(self) -> float:
        return statistics.mean(self.latencies_ms) if self.latencies_ms else float("nan")

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.rps:,.0f} | {self.pct(50):.1f} | {self.pct(99):.1f} | "
            f"{self.mean:.1f} | {self.cpu_ms:.1f} | {self.errors} |"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(50), 2),
            "p99_ms": round(self.pct(99), 2),
            "mean_ms": round(self.mean, 2),
            "server_cpu_ms_per_request": round(self.cpu_ms, 3),
            "statuses": dict(self.statuses),
        }


async def run_load(
    base_url: str,
    make_request: Callable[[int], tuple[str, str, dict[str, Any]]],
    *,
    concurrency: int = 16,
    seconds: float = 10.0,
    headers: dict[str, str] | None = None,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
) -> LoadResult:
    """`make_request(i)` gives (method, path, httpx kwargs) for the i-th request."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    count = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers or {}, limits=limits, timeout=60
    ) as client:

        async def one_client(cid: int) -> None:
            nonlocal errors, count
            i = cid
            while time.perf_counter() < stop_at:
                method, path, kw = make_request(i)
                t0 = time.perf_counter()
                try:
                    r = await client.request(method, path, **kw)
                except httpx.HTTPError as exc:  # count it and go on: one failure is a result too
                    statuses[type(exc).__name__] += 1
                    errors += 1
                else:
                    statuses[str(r.status_code)] += 1
                    if not ok(r):
                        errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)
                count += 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return LoadResult(count, errors, elapsed, latencies, statuses)
