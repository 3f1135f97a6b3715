"""A small closed-loop HTTP load generator: N concurrent clients for T seconds on loopback."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.rps:,.0f} | {self.pct(50):.2f} | {self.pct(99):.2f} | "
            f"{statistics.mean(self.latencies_ms):.2f} | {self.errors} |"
        )


async def run_load(
    base_url: str,
    make_request: Callable[[int], tuple[str, str, dict[str, Any]]],
    *,
    concurrency: int = 16,
    seconds: float = 10.0,
    headers: dict[str, str] | None = None,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    count = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers or {}, limits=limits, timeout=30
    ) as client:

        async def one_client(cid: int) -> None:
            nonlocal errors, count
            i = cid
            while time.perf_counter() < stop_at:
                method, path, kw = make_request(i)
                t0 = time.perf_counter()
                r = await client.request(method, path, **kw)
                latencies.append((time.perf_counter() - t0) * 1000)
                count += 1
                if not ok(r):
                    errors += 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return LoadResult(count, errors, elapsed, latencies)
