"""The worker registry as the rest of openmj sees it: which worker processes are alive, which
models and operations each serves (docs/deployment.md, "Which models are served").

Each worker process records itself every `registry_seconds`; one not heard from for
`worker_ttl_seconds` counts as gone (killed, or its machine lost) and is later deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerNode:
    """One worker process (`openmj worker`, or `openmj serve` with its in-process workers)."""

    id: str
    host: str
    pid: int
    models: tuple[str, ...]
    operations: frozenset[str]
    workers: int  # worker loops in the process
    running: int  # tasks it was running when it last recorded itself
    started_at: float
    last_seen: float
    draining: bool = False  # stopping: it claims nothing new

    def serves(self, model: str, operation: str) -> bool:
        """Whether it would claim a task of `model` (empty: a task of no model, anyone's) and `operation`."""
        return not self.draining and (not model or model in self.models) and operation in self.operations

    def alive(self, now: float, ttl: float) -> bool:
        return now - self.last_seen <= ttl


def live(nodes: Iterable[WorkerNode], now: float, ttl: float) -> list[WorkerNode]:
    return [n for n in nodes if n.alive(now, ttl)]


def served(nodes: Iterable[WorkerNode], model: str, operation: str) -> bool:
    """Some node of `nodes` (live ones) would claim such a task."""
    return any(n.serves(model, operation) for n in nodes)
