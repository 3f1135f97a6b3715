"""Provider health: failures in a row, cool-downs and refused keys (docs/relay.md, "Routing")."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from openmj.relay.providers import Provider
from openmj.relay.upstreams import UpstreamError

log = logging.getLogger("openmj.relay")

COOLDOWN_S = 30.0  # after FAILURES_TO_COOL upstream failures in a row, or a 429 without Retry-After
FAILURES_TO_COOL = 3
PROBE_S = 300.0  # a provider whose key was refused is tried again after this long


class Health:
    """Per-process provider health: failures in a row, cool-downs and refused keys."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._running: dict[str, int] = {}

    def available(self, provider: Provider) -> bool:
        with self._lock:
            cool = self._until.get(provider.name, 0.0) <= self._clock()
            return cool and self._running.get(provider.name, 0) < provider.max_concurrency

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
            if wait:
                self._until[provider.name] = max(self._until.get(provider.name, 0.0), self._clock() + wait)
        log.warning("provider %s failed (%s)%s", provider.name, err, f"; cooling {wait:g} s" if wait else "")

    def succeeded(self, provider: Provider) -> None:
        with self._lock:
            self._failures[provider.name] = 0
            self._until.pop(provider.name, None)

    def enter(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = self._running.get(provider.name, 0) + 1

    def leave(self, provider: Provider) -> None:
        with self._lock:
            self._running[provider.name] = max(0, self._running.get(provider.name, 0) - 1)
