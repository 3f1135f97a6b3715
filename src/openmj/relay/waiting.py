"""Waiting on upstream tasks: polled at the provider's pace, in bulk where its API has a bulk read
(midjourney-proxy's `list-by-condition`), and woken at once by the upstream's callback.

A callback only wakes the wait: what the task became is always read from the upstream with our
own key, so a callback body is never trusted (a forged one, even correctly signed, can only cause
one early poll).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from openmj.engines.base import JobControl
from openmj.relay.upstreams import Poll, Refused, Upstream, UpstreamError

log = logging.getLogger("openmj.relay")

SLICE_S = 1.0  # a waiting task checks cancel and its time-out at least this often
BULK_BATCH = 500  # ids per bulk read (midjourney-proxy reads ids with one IN query)


class Wakeups:
    """The waits of this process by openmj task id, for the callback route to wake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, Callable[[], None]] = {}

    def register(self, task_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._waiting[task_id] = wake

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._waiting.pop(task_id, None)

    def wake(self, task_id: str) -> bool:
        """True when a wait for `task_id` runs in this process (and was woken)."""
        with self._lock:
            wake = self._waiting.get(task_id)
        if wake is not None:
            wake()
        return wake is not None


class Watch:
    """One upstream task being waited on; `next()` gives its newest state."""

    def next(self, control: JobControl) -> Poll:
        raise NotImplementedError

    def wake(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _wait(event: threading.Event, seconds: float, control: JobControl) -> bool:
    """Wait up to `seconds` for `event` in slices, stopping for cancel and time-out; True if set."""
    remaining = seconds
    while remaining > 0:
        control.check()
        step = min(SLICE_S, remaining)
        if event.wait(step):
            return True
        remaining -= step
    return False


class PolledWatch(Watch):
    """A task polled on its own: at once, then every `poll_s` or when woken."""

    def __init__(self, client: Upstream, upstream_id: str) -> None:
        self.client, self.upstream_id = client, upstream_id
        self._woken = threading.Event()
        self._first = True

    def next(self, control: JobControl) -> Poll:
        if not self._first:
            _wait(self._woken, self.client.provider.poll_seconds, control)
            self._woken.clear()
        self._first = False
        control.check()
        return self.client.poll(self.upstream_id)

    def wake(self) -> None:
        self._woken.set()


class BulkWatch(Watch):
    def __init__(self, poller: BulkPoller, upstream_id: str) -> None:
        self.poller, self.upstream_id = poller, upstream_id
        self._fresh = threading.Event()
        self._lock = threading.Lock()
        self._latest: Poll | UpstreamError | None = None
        self._alone: PolledWatch | None = None  # when the upstream turns out to have no bulk read

    def deliver(self, result: Poll | UpstreamError) -> None:
        with self._lock:
            self._latest = result
        self._fresh.set()

    def next(self, control: JobControl) -> Poll:
        if self.poller.supported:
            # a tick is at most poll_s away; twice that and more means the poller itself is stuck
            while not _wait(self._fresh, self.poller.client.provider.poll_seconds * 2 + SLICE_S, control):
                self.poller.ensure_running()
            self._fresh.clear()
            if self.poller.supported:
                with self._lock:
                    latest = self._latest
                if isinstance(latest, UpstreamError):
                    raise latest
                assert latest is not None
                return latest
        if self._alone is None:
            self._alone = PolledWatch(self.poller.client, self.upstream_id)
        return self._alone.next(control)

    def wake(self) -> None:
        if self._alone is not None:
            self._alone.wake()
        self.poller.kick()

    def close(self) -> None:
        self.poller.drop(self)


class BulkPoller:
    """One thread per provider reads every watched task of it in one call a tick (`poll_many`),
    instead of one call per task: 500 tasks in flight cost one request every `poll_s`."""

    def __init__(self, client: Upstream) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._watches: dict[int, BulkWatch] = {}
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None
        self.calls = 0  # bulk reads made (the benchmark and tests count them)
        self.supported = True  # False once the upstream refuses the bulk read (an older host)

    def watch(self, upstream_id: str) -> BulkWatch:
        w = BulkWatch(self, upstream_id)
        with self._lock:
            if not self.supported:
                return w  # it polls alone
            self._watches[id(w)] = w
        self.ensure_running()
        return w

    def drop(self, w: BulkWatch) -> None:
        with self._lock:
            self._watches.pop(id(w), None)

    def kick(self) -> None:
        self._kick.set()

    def ensure_running(self) -> None:
        with self._lock:
            if not self.supported or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(
                target=self._run, name=f"relay-bulk-{self.client.provider.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                watches = list(self._watches.values())
                if not watches:
                    self._thread = None
                    return
            self._tick(watches)
            self._kick.wait(self.client.provider.poll_seconds)
            self._kick.clear()

    def _tick(self, watches: list[BulkWatch]) -> None:
        ids = sorted({w.upstream_id for w in watches})
        found: dict[str, Poll] = {}
        failed: UpstreamError | None = None
        for start in range(0, len(ids), BULK_BATCH):
            try:
                self.calls += 1
                found |= self.client.poll_many(ids[start : start + BULK_BATCH])
            except Refused as refused:
                log.warning("%s has no bulk read (%s): polling each task", self.client.provider.name, refused)
                with self._lock:
                    self.supported = False
                    for w in self._watches.values():
                        w._fresh.set()  # wake them into polling alone
                    self._watches.clear()
                return
            except UpstreamError as err:
                failed = err
            except Exception as exc:  # a bug must not strand every waiting task
                log.exception("bulk poll of %s failed", self.client.provider.name)
                failed = UpstreamError(f"{self.client.provider.name}: bulk poll failed ({exc})")
        for w in watches:
            poll = found.get(w.upstream_id)
            if poll is not None:
                w.deliver(poll)
            else:
                w.deliver(
                    failed or UpstreamError(f"{self.client.provider.name}: task {w.upstream_id} is unknown")
                )


__all__ = ["BulkPoller", "PolledWatch", "Wakeups", "Watch"]
