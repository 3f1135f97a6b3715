"""The worker registry at run time: a worker process records itself (`NodeRecord`), every
process reads who is alive (`LiveWorkers`) for `estimated_time`, /readyz, /metrics and the admin
view. The rows are store/registry.py's; what they mean is core/workers.py's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

from openmj.core.tasks import Operation
from openmj.core.workers import WorkerNode, live, served
from openmj.engines.base import Engine
from openmj.store import registry
from openmj.store.db import Database

log = logging.getLogger("openmj.nodes")

# how old the picture of live workers behind estimated_time may be: many clients poll their
# tasks every second, and the registry itself changes only every `registry_seconds`
CACHE_SECONDS = 2.0


class NodeRecord:
    """This process's row in the registry, rewritten every `every` seconds until it stops."""

    def __init__(self, db: Database, engine: Engine, workers: int, running: Callable[[], int]) -> None:
        self.db = db
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.models = tuple(engine.model_names)
        self.operations = frozenset(op.value for op in Operation if engine.supports(op))
        self.workers = workers
        self.running = running
        self.started_at = time.time()
        self.draining = False

    def snapshot(self) -> WorkerNode:
        return WorkerNode(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            models=self.models,
            operations=self.operations,
            workers=self.workers,
            running=self.running(),
            started_at=self.started_at,
            last_seen=time.time(),
            draining=self.draining,
        )

    async def announce(self) -> None:
        await registry.announce(self.db, self.snapshot())

    async def run_forever(self, stop: asyncio.Event, every: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
            try:
                await self.announce()
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("worker registry: could not record this node (%s)", exc)

    async def drain(self) -> None:
        """From now on this node claims nothing: say so, so the API nodes stop counting on it."""
        self.draining = True
        with contextlib.suppress(Exception):
            await self.announce()

    async def withdraw(self) -> None:
        try:
            await registry.withdraw(self.db, self.id)
        except Exception as exc:  # it will age out of the registry instead
            log.warning("worker registry: could not remove this node (%s)", exc)


class LiveWorkers:
    """The worker nodes heard from within `ttl` seconds, read at most every CACHE_SECONDS."""

    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
        self.ttl = ttl
        self._nodes: list[WorkerNode] = []
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def nodes(self) -> list[WorkerNode]:
        async with self._lock:  # one read when many requests find the picture old at once
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= CACHE_SECONDS:
                self._nodes = await registry.nodes(self.db)
                self._read_at = now
        return live(self._nodes, time.time(), self.ttl)

    async def serves(self, model: str, operation: str) -> bool:
        """Some live worker would claim a task of `model` and `operation` (a database that cannot be
        read says nothing either way: True, so estimates stay as they were)."""
        try:
            return served(await self.nodes(), model, operation)
        except Exception as exc:
            log.warning("worker registry: could not be read (%s)", exc)
            return True
