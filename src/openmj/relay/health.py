"""Provider health: failures in a row, cool-downs and refused keys (docs/relay.md, "Routing").

Failures in a row and the tasks running at each provider are this process's own; a cool-down (a
429, a refused key, too many failures) is also written to the database (store/health.py) and read
before each task is routed, so every gateway node on the same database leaves that provider alone
until it ends. The database's answer is waited for briefly; without it a node goes on with what it
knows itself."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from openmj.relay.providers import Provider
from openmj.relay.upstreams import UpstreamError
from openmj.store import health as store
from openmj.store.db import Database

log = logging.getLogger("openmj.relay")

COOLDOWN_S = 30.0  # after FAILURES_TO_COOL upstream failures in a row, or a 429 without Retry-After
FAILURES_TO_COOL = 3
PROBE_S = 300.0  # a provider whose key was refused is tried again after this long
KEY_REFUSED = "key refused"  # how a shared cool-down for a refused key begins its reason
SHARED_WAIT_S = 5.0  # the longest a routing decision waits on the shared cool-downs


class SharedCooldowns(Protocol):
    """Cool-downs every node sees (Unix times)."""

    def cooling(self, now: float) -> dict[str, float]: ...

    def cool(self, provider: str, until: float, reason: str) -> None: ...

    def clear(self, provider: str) -> None: ...


class DatabaseCooldowns:
    """store/health.py, called from the relay's threads on the process's event loop."""

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.loop = db, loop

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # on an event loop's own thread: waiting here would block it
            coro.close()
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop has closed: the process is stopping
            coro.close()
            return None
        try:
            return future.result(SHARED_WAIT_S)
        except Exception as exc:  # the database is slow or away: this node's own view goes on
            log.warning("provider health: the database did not answer (%s)", type(exc).__name__)
            return None

    def cooling(self, now: float) -> dict[str, float]:
        rows = self._run(store.cooling(self.db, now)) or {}
        return {name: until for name, (until, _) in rows.items()}

    def cool(self, provider: str, until: float, reason: str) -> None:
        self._run(store.cool(self.db, provider, until, reason))

    def clear(self, provider: str) -> None:
        self._run(store.clear(self.db, provider))


class Health:
    """Provider health: failures in a row, cool-downs (this process's and, with `shared`, every
    node's) and refused keys."""

    def __init__(self, clock: Any = time.time, shared: SharedCooldowns | None = None) -> None:
        self._clock = clock  # wall time: cool-downs are compared across nodes
        self.shared = shared
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._elsewhere: dict[str, float] = {}  # the shared cool-downs, as last read
        self._running: dict[str, int] = {}

    def refresh(self) -> None:
        """Read the cool-downs every node has set (before a task is routed)."""
        if self.shared is not None:
            seen = self.shared.cooling(self._clock())
            with self._lock:
                self._elsewhere = seen

    def cooling_until(self, provider: Provider) -> float:
        with self._lock:
            return max(self._until.get(provider.name, 0.0), self._elsewhere.get(provider.name, 0.0))

    def available(self, provider: Provider) -> bool:
        if self.cooling_until(provider) > self._clock():
            return False
        with self._lock:
            return self._running.get(provider.name, 0) < provider.max_concurrency

    def failed(self, provider: Provider, err: UpstreamError) -> None:
        with self._lock:
            n = self._failures[provider.name] = self._failures.get(provider.name, 0) + 1
            wait = 0.0
            if err.key_refused:
                wait = PROBE_S
            elif err.retry_after is not None:
                wait = err.retry_after
            elif "429" in str(err) or n >= FAILURES_TO_COOL:
                wait = COOLDOWN_S
            until = max(self._until.get(provider.name, 0.0), self._clock() + wait)
            if wait:
                self._until[provider.name] = until
        log.warning("provider %s failed (%s)%s", provider.name, err, f"; cooling {wait:g} s" if wait else "")
        if wait and self.shared is not None:
            reason = f"{KEY_REFUSED}: {err}" if err.key_refused else str(err)
            self.shared.cool(provider.name, until, reason)

    def succeeded(self, provider: Provider) -> None:
        with self._lock:
            self._failures[provider.name] = 0
            was = self._until.pop(provider.name, None) or self._elsewhere.pop(provider.name, None)
        if was is not None and self.shared is not None:  # it answers again: for every node
            self.shared.clear(provider.name)

    def enter(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = self._running.get(provider.name, 0) + 1

    def leave(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = max(0, self._running.get(provider.name, 0) - 1)
