"""What differs between the four APIs once a task exists, as data: one record per dialect.

The service, the worker and the callback deliverer read a task's `DialectPolicy` by its
`task.dialect` name; nothing outside `openmj.dialects` (which owns the wire formats) and this table
names a dialect. The provider rules are quoted in docs/api/*.md and docs/callbacks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DAY = 24 * 3600.0


@dataclass(frozen=True)
class CallbackSchedule:
    """``timeout`` bounds one whole delivery; ``retry_delays[i]`` is the wait after failure i+1."""

    timeout: float
    retry_delays: tuple[float, ...]

    def delay_after(self, failures: int) -> float | None:
        """Seconds to wait after the ``failures``-th failed attempt, or None when retries are spent."""
        return self.retry_delays[failures - 1] if 1 <= failures <= len(self.retry_delays) else None


@dataclass(frozen=True)
class DialectPolicy:
    name: str
    #: seconds a finished task's result links (and files) live
    media_lifetime: float
    callbacks: CallbackSchedule
    #: call back on every progress change (midjourney-proxy's notifyHook), not only at the end
    progress_callbacks: bool
    #: a banned prompt refuses the request (midjourney-proxy code 24) instead of failing the task
    refuse_banned: bool
    #: a longer (or shorter) link lifetime for a Midjourney major version, e.g. {"8": 30 days}
    version_lifetimes: Mapping[str, float] = field(default_factory=dict)

    def lifetime(self, version: str | None) -> float:
        """Seconds a finished task's links live, for a task of `version` ("7", "8.1", …)."""
        major = (version or "").split(".")[0]
        return self.version_lifetimes.get(major, self.media_lifetime)


POLICIES: dict[str, DialectPolicy] = {
    p.name: p
    for p in (
        # EvoLink (docs/api/evolink.md): links valid 24 hours (30 days for V8.x); callbacks time
        # out after 10 s and are retried 3 times after 1 s, 2 s and 4 s
        DialectPolicy("evolink", DAY, CallbackSchedule(10.0, (1.0, 2.0, 4.0)), False, False, {"8": 30 * DAY}),
        # kie.ai (docs/api/kie.md): results kept 15 days; 15 s per callback, then retries after
        # 1, 5 and 15 minutes
        DialectPolicy("kie", 15 * DAY, CallbackSchedule(15.0, (60.0, 300.0, 900.0)), False, False),
        # APIXO (docs/api/apixo.md): images expire after 15 days; 30 s per callback, 3 retries
        # with growing delays from 30 s (later ones undocumented: doubling)
        DialectPolicy("apixo", 15 * DAY, CallbackSchedule(30.0, (30.0, 60.0, 120.0)), False, False),
        # midjourney-proxy (docs/api/midjourney-proxy.md): no provider rule for links (relays
        # re-host them quickly); notifyHook on every change, a failed one is only logged
        DialectPolicy("mjproxy", 15 * DAY, CallbackSchedule(10.0, ()), True, True),
    )
}
#: for tasks whose dialect this server no longer knows (a row written by a newer version)
DEFAULT_POLICY = POLICIES["evolink"]


def policy(dialect: str) -> DialectPolicy:
    return POLICIES.get(dialect, DEFAULT_POLICY)


def media_lifetime(dialect: str, version: str | None) -> float:
    return policy(dialect).lifetime(version)
