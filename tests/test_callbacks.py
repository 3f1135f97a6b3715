"""Callback delivery over real HTTP: a receiver on loopback, the real store on SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from openmj.accounts import create_key
from openmj.callbacks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SCHEDULES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackDeliverer,
    Renderer,
    encode_body,
    sign,
    signature_header,
    verify,
)
from openmj.core.tasks import Status, Task
from openmj.net import NetPolicy
from openmj.store.db import Database
from openmj.store.models import OutboxRow, TaskRow
from openmj.store.repo import OutboxSpec, Repository
from tests.helpers import pending_task
from tests.live import await_until
from tests.loopback import Receiver

SECRET = b"callback-test-secret"
DEV = NetPolicy(allow_private=True)
STRICT = NetPolicy(allow_private=False)

# --------------------------------------------------------------------------------------------
# the receiver: a real HTTP server on loopback that answers from a per-path plan (tests/loopback.py)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver().start()
    yield srv
    srv.stop()


# --------------------------------------------------------------------------------------------
# the store and tasks, written the way the app writes them


def render(task: Task, event: str) -> tuple[dict[str, Any], dict[str, str]]:
    # a renderer trying to set our signature header must not manage to
    return (
        {"id": task.id, "status": task.status.value, "event": event, "prompt": task.prompt},
        {"X-Test": "1", "x-openmj-signature": "t=1,v1=forged"},
    )


RENDERERS: dict[str, Renderer] = {d: render for d in SCHEDULES}


@dataclass
class Store:
    url: str
    db: Database
    repo: Repository
    owner: str

    async def reopen(self) -> Store:
        """A process restart: a new engine on the same database file."""
        await self.db.dispose()
        db = Database(self.url)
        return Store(self.url, db, Repository(db), self.owner)

    async def task(self, callback_url: str, dialect: str = "evolink", prompt: str = "a cat") -> Task:
        task = pending_task(self.owner, dialect=dialect, prompt=prompt, callback_url=callback_url)
        assert await self.repo.insert_task(task, 0, max_unfinished=None, queue_cap=10**9) == "ok"
        return task

    async def failed_task(self, callback_url: str, dialect: str = "evolink", prompt: str = "a cat") -> Task:
        """A task that failed: one outbox row with event "failed", as the worker writes it."""
        task = await self.task(callback_url, dialect, prompt)
        done = await self.repo.finish_unsuccessfully(
            task.id, Status.FAILED, "generation_failed", "boom", refund=True, outbox=OutboxSpec("failed")
        )
        assert done is not None
        return done

    async def rows(self, task_id: str) -> list[OutboxRow]:
        return await self.repo.outbox_for_task(task_id)

    async def row(self, task_id: str) -> OutboxRow:
        rows = await self.rows(task_id)
        assert len(rows) == 1
        return rows[0]


def with_store(tmp_path: Path, fn: Callable[[Store], Awaitable[None]], loop_factory: Any = None) -> None:
    async def main() -> None:
        url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
        db = Database(url)
        await db.migrate()
        repo = Repository(db)
        key = await create_key(repo, credits=100)
        store = Store(url, db, repo, key.key.id)
        try:
            await fn(store)
        finally:
            await store.db.dispose()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


async def run_until(
    deliverer: CallbackDeliverer, done: Callable[[], Awaitable[bool]], timeout: float
) -> None:
    """Run the delivery loop until ``done()``."""
    stop = asyncio.Event()
    loop_task = asyncio.create_task(deliverer.run_forever(stop))

    async def finished() -> bool:
        assert not loop_task.done(), "the delivery loop ended on its own"
        return await done()

    try:
        await await_until(finished, timeout, what="the deliveries")
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 15)


class FakeClock:
    """Wall-clock time that the test moves, so schedules and leases take no real time; counts the
    times the deliverer asked it (a delivery pass starts by asking)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


def expected_signature(timestamp: str, body: bytes) -> str:
    """Computed here from the documented scheme, not with openmj's own helper."""
    return hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def state_is(store: Store, task_id: str, state: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await store.row(task_id)).state == state

    return check


# --------------------------------------------------------------------------------------------
# signature


def test_signature_scheme() -> None:
    body = encode_body({"id": "t1", "prompt": "café ☕"})
    assert body == '{"id":"t1","prompt":"café ☕"}'.encode()  # compact, UTF-8, no \u escapes
    digest = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == digest
    header = signature_header(SECRET, 1700000000, body)
    assert header == f"t=1700000000,v1={digest}"
    assert verify(SECRET, header, body, now=1700000000 + 299)
    assert not verify(SECRET, header, body, now=1700000000 + 301)  # replayed too late
    assert not verify(SECRET, header, body, now=1700000000 - 301)
    assert not verify(SECRET, header, body + b" ", now=1700000000)  # body changed
    assert not verify(b"other secret", header, body, now=1700000000)
    assert not verify(SECRET, f"t=1700000001,v1={digest}", body, now=1700000000)  # time changed
    assert not verify(SECRET, "v1=" + digest, body, now=1700000000)
    # a receiver rotating secrets may be sent two v1 values; one matching is enough
    assert verify(SECRET, f"t=1700000000,v1={'0' * 64},v1={digest}", body, now=1700000000)


def test_empty_secret_is_refused(tmp_path: Path) -> None:
    async def scenario(store: Store) -> None:
        with pytest.raises(ValueError):
            CallbackDeliverer(store.repo, RENDERERS, b"", DEV)

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# retries on the EvoLink schedule, restarts


def test_fails_twice_then_delivered_after_1s_and_2s(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plans["/cb"] = [500, 503, 200]

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"), prompt="un chat, café ☕")
        # a poll far longer than the test: the retries must be timed by the schedule alone
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, poll_seconds=60)
        await run_until(deliverer, state_is(store, task.id, "delivered"), timeout=15)
        row = await store.row(task.id)
        assert (row.state, row.attempts, row.last_error) == ("delivered", 3, None)

        hits = receiver.hits()
        assert [h.path for h in hits] == ["/cb"] * 3
        # never early; no upper bound, a loaded machine may run late: that it is done within 15 s
        # against a 60 s poll already shows the loop woke up by itself for each retry
        gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
        assert gaps[0] >= 0.95 and gaps[1] >= 1.95, gaps

        expected = {"id": task.id, "status": "failed", "event": "failed", "prompt": "un chat, café ☕"}
        for hit in hits:
            assert json.loads(hit.body) == expected
            assert hit.body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
            assert hit.headers["Content-Type"] == "application/json"
            assert hit.headers["X-Test"] == "1"  # the renderer's own headers are sent
            assert hit.headers[EVENT_HEADER] == "failed"
            assert hit.headers[DELIVERY_HEADER] == str(row.id)  # the same on every retry
            t = hit.headers[TIMESTAMP_HEADER]
            assert abs(int(t) - hit.at) <= 2
            assert hit.headers[SIGNATURE_HEADER] == f"t={t},v1={expected_signature(t, hit.body)}"
            signatures = [v for k, v in hit.header_list if k.lower() == SIGNATURE_HEADER.lower()]
            assert len(signatures) == 1  # the renderer's forged one was dropped

    with_store(tmp_path, scenario)


def test_restart_between_attempts(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plans["/cb"] = [500, 200]

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"))
        first = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV)
        assert await first.deliver_due() == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("pending", 1)
        assert row.last_error is not None and "500" in row.last_error

        # the process stops here; a new one starts on the same database file
        store2 = await store.reopen()
        store.db = store2.db  # so the fixture disposes the live engine
        second = CallbackDeliverer(store2.repo, RENDERERS, SECRET, DEV)
        await run_until(second, state_is(store2, task.id, "delivered"), timeout=10)
        hits = receiver.hits("/cb")
        assert len(hits) == 2
        assert hits[1].at - hits[0].at >= 0.95  # the schedule is kept across the restart
        assert json.loads(hits[1].body)["id"] == task.id
        assert (await store2.row(task.id)).attempts == 2

    with_store(tmp_path, scenario)


def test_row_claimed_by_a_dead_deliverer_is_sent_after_its_lease(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"))
        # a deliverer claims the row and dies before sending it
        clock = FakeClock()
        claimed = await store.repo.due_outbox(clock.now, lease_seconds=1.0)
        assert [r.task_id for r in claimed] == [task.id]
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, clock=clock)
        assert await deliverer.deliver_due() == 0
        assert receiver.hits() == []
        clock.now += 1.1  # past the dead deliverer's lease
        assert await deliverer.deliver_due() == 1
        assert (await store.row(task.id)).state == "delivered"
        assert len(receiver.hits("/cb")) == 1

    with_store(tmp_path, scenario)


def test_wake_delivers_without_waiting_for_the_poll(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"))
        clock = FakeClock(time.time() - 3600)  # an hour behind: the row is not due for it yet
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, poll_seconds=60, clock=clock)
        stop = asyncio.Event()
        loop_task = asyncio.create_task(deliverer.run_forever(stop))

        async def first_pass_started() -> bool:
            return clock.calls > 0

        async def delivered() -> bool:
            return bool(receiver.hits("/cb"))

        await await_until(first_pass_started, 10, 0.01, "the first delivery pass")
        clock.now = time.time() + 1  # due now; the loop found nothing and sleeps for its 60 s poll
        deliverer.wake()
        await await_until(delivered, 10, 0.02, "wake() to start a delivery")  # far sooner than the poll
        stop.set()
        await asyncio.wait_for(loop_task, 15)
        assert (await store.row(task.id)).state == "delivered"

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# schedules


@pytest.mark.parametrize("dialect", sorted(SCHEDULES))
def test_schedule_then_dead(tmp_path: Path, receiver: Receiver, dialect: str) -> None:
    receiver.plans["/cb"] = [503]
    schedule = SCHEDULES[dialect]

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"), dialect=dialect)
        clock = FakeClock()
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, clock=clock)
        for attempt, delay in enumerate(schedule.retry_delays, start=1):
            assert await deliverer.deliver_due() == 1
            row = await store.row(task.id)
            assert (row.state, row.attempts) == ("pending", attempt)
            assert row.next_attempt_at == pytest.approx(clock.now + delay)
            clock.now += delay - 0.5
            assert await deliverer.deliver_due() == 0  # not before its time
            clock.now += 0.5
        assert await deliverer.deliver_due() == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("dead", len(schedule.retry_delays) + 1)
        assert "503" in (row.last_error or "")
        clock.now += 3600
        assert await deliverer.deliver_due() == 0
        assert len(receiver.hits("/cb")) == len(schedule.retry_delays) + 1

    with_store(tmp_path, scenario)


def test_schedules_are_the_documented_ones() -> None:
    assert SCHEDULES["evolink"].timeout == 10 and SCHEDULES["evolink"].retry_delays == (1, 2, 4)
    assert SCHEDULES["kie"].timeout == 15 and SCHEDULES["kie"].retry_delays == (60, 300, 900)
    assert SCHEDULES["apixo"].timeout == 30 and SCHEDULES["apixo"].retry_delays[0] == 30
    assert len(SCHEDULES["apixo"].retry_delays) == 3
    assert list(SCHEDULES["apixo"].retry_delays) == sorted(set(SCHEDULES["apixo"].retry_delays))
    assert SCHEDULES["mjproxy"].retry_delays == ()


def test_mjproxy_is_not_retried(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plans["/cb"] = [500, 200]

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"), dialect="mjproxy")
        clock = FakeClock()
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, clock=clock)
        assert await deliverer.deliver_due() == 1
        clock.now += 3600  # any retry would be due long before this
        assert await deliverer.deliver_due() == 0
        assert len(receiver.hits("/cb")) == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("dead", 1)

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# address rules at delivery


def test_redirect_is_a_failure_and_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plans["/moved"] = [302]

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/moved"))
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV)
        before = time.time()
        assert await deliverer.deliver_due() == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("pending", 1)  # a failure: retried per schedule
        assert "redirect_not_followed" in (row.last_error or "")
        assert before + 1 <= row.next_attempt_at <= time.time() + 1
        assert [h.path for h in receiver.hits()] == ["/moved"]  # /landing never requested

    with_store(tmp_path, scenario)


class FakeDNSLoop(asyncio.SelectorEventLoop):
    """A resolver that says hooks.example.com is 127.0.0.1 (the DNS answer of a rebinding
    attacker). Only name resolution is faked; the connection, if any, would be real."""

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]
        return await super().getaddrinfo(host, port, *args, **kwargs)


@pytest.mark.parametrize(
    ("host", "scheme", "code"),
    [
        ("127.0.0.1", "https", "blocked_address"),
        ("[::1]", "https", "blocked_address"),
        ("2130706433", "https", "blocked_address"),
        ("localhost", "https", "blocked_address"),
        ("hooks.example.com", "https", "blocked_address"),  # resolves to loopback
        ("127.0.0.1", "http", "https_required"),
    ],
)
def test_refused_address_at_delivery_is_dead_at_once(
    tmp_path: Path, receiver: Receiver, host: str, scheme: str, code: str
) -> None:
    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb", host, scheme))
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, STRICT)
        assert await deliverer.deliver_due() == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("dead", 1)
        assert (row.last_error or "").startswith(code + ":"), row.last_error
        assert receiver.hits() == []  # nothing ever reached the receiver

    with_store(tmp_path, scenario, loop_factory=FakeDNSLoop)


def test_the_same_loopback_url_is_delivered_when_private_networks_are_allowed(
    tmp_path: Path, receiver: Receiver
) -> None:
    # the control for the test above: it is the policy that refuses, not a broken receiver
    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"))
        assert await CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV).deliver_due() == 1
        assert (await store.row(task.id)).state == "delivered"
        assert len(receiver.hits("/cb")) == 1

    with_store(tmp_path, scenario)


def test_too_long_url_is_dead(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb?pad=" + "x" * 2100))
        assert await CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV).deliver_due() == 1
        row = await store.row(task.id)
        assert row.state == "dead" and (row.last_error or "").startswith("url_too_long")
        assert receiver.hits() == []

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# rows that cannot be rendered


def test_missing_renderer_task_or_broken_renderer_is_dead(tmp_path: Path, receiver: Receiver) -> None:
    def broken(task: Task, event: str) -> tuple[dict[str, Any], dict[str, str]]:
        raise KeyError("no such field")

    async def scenario(store: Store) -> None:
        no_renderer = await store.failed_task(receiver.url("/a"), dialect="kie")
        gone = await store.failed_task(receiver.url("/b"))
        bad = await store.failed_task(receiver.url("/c"), dialect="apixo")
        async with store.db.session.begin() as s:
            await s.execute(delete(TaskRow).where(TaskRow.id == gone.id))
        renderers: dict[str, Renderer] = {"evolink": render, "apixo": broken}
        deliverer = CallbackDeliverer(store.repo, renderers, SECRET, DEV)
        assert await deliverer.deliver_due() == 3
        errors = {}
        for t in (no_renderer, gone, bad):
            row = await store.row(t.id)
            assert row.state == "dead"
            errors[t.id] = row.last_error or ""
        assert "no callback renderer for dialect 'kie'" in errors[no_renderer.id]
        assert "no longer exists" in errors[gone.id]
        assert "KeyError" in errors[bad.id]
        assert receiver.hits() == []

    with_store(tmp_path, scenario)


def test_async_renderer(tmp_path: Path, receiver: Receiver) -> None:
    async def arender(task: Task, event: str) -> tuple[list[Any], dict[str, str]]:
        return [task.id, event], {}

    async def scenario(store: Store) -> None:
        task = await store.failed_task(receiver.url("/cb"))
        assert await CallbackDeliverer(store.repo, {"evolink": arender}, SECRET, DEV).deliver_due() == 1
        assert json.loads(receiver.hits("/cb")[0].body) == [task.id, "failed"]

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# midjourney-proxy progress events


def test_progress_events_best_effort_and_never_stale(tmp_path: Path, receiver: Receiver) -> None:
    async def scenario(store: Store) -> None:
        task = await store.task(receiver.url("/hook"), dialect="mjproxy")
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV)

        def events() -> list[str]:
            return [json.loads(h.body)["event"] for h in receiver.hits("/hook")]

        await store.repo.record_progress_event(task.id, OutboxSpec("progress:30"))
        assert await deliverer.deliver_due() == 1
        assert events() == ["progress:30"]

        # a backlog: the terminal event supersedes the progress written before it
        await store.repo.record_progress_event(task.id, OutboxSpec("progress:60"))
        await store.repo.record_progress_event(task.id, OutboxSpec("progress:90"))
        await store.repo.finish_unsuccessfully(
            task.id, Status.FAILED, "generation_failed", "boom", refund=True, outbox=OutboxSpec("failed")
        )
        assert await deliverer.deliver_due() == 3
        assert events() == ["progress:30", "failed"]

        # a late progress event after the final one was sent is never delivered
        await store.repo.record_progress_event(task.id, OutboxSpec("progress:95"))
        assert await deliverer.deliver_due() == 1
        assert events() == ["progress:30", "failed"]

        states = [(r.event, r.state) for r in await store.rows(task.id)]
        assert states == [
            ("progress:30", "delivered"),
            ("progress:60", "skipped"),
            ("progress:90", "skipped"),
            ("failed", "delivered"),
            ("progress:95", "skipped"),
        ]

    with_store(tmp_path, scenario)


def test_progress_event_that_fails_is_not_retried(tmp_path: Path, receiver: Receiver) -> None:
    receiver.plans["/hook"] = [500, 200]

    async def scenario(store: Store) -> None:
        # even on a dialect that retries terminal events, progress is best-effort
        task = await store.task(receiver.url("/hook"), dialect="evolink")
        await store.repo.record_progress_event(task.id, OutboxSpec("progress:40"))
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV)
        assert await deliverer.deliver_due() == 1
        row = await store.row(task.id)
        assert (row.state, row.attempts) == ("dead", 1)

    with_store(tmp_path, scenario)


# --------------------------------------------------------------------------------------------
# concurrency


def test_deliveries_run_concurrently_but_bounded(tmp_path: Path, receiver: Receiver) -> None:
    receiver.delay = 0.4

    async def scenario(store: Store) -> None:
        tasks = [await store.failed_task(receiver.url(f"/cb/{i}")) for i in range(20)]
        deliverer = CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV, poll_seconds=0.1)

        async def all_delivered() -> bool:
            return all([(await store.row(t.id)).state == "delivered" for t in tasks])

        await run_until(deliverer, all_delivered, timeout=30)
        assert len(receiver.hits()) == 20
        assert 2 <= receiver.max_active <= 8  # not one at a time (counted by the receiver, not timed)

    with_store(tmp_path, scenario)


def test_events_of_one_task_are_sent_one_after_another_in_order(tmp_path: Path, receiver: Receiver) -> None:
    receiver.delay = 0.3

    async def scenario(store: Store) -> None:
        task = await store.task(receiver.url("/cb"))
        await store.repo.record_progress_event(task.id, OutboxSpec("processing"))
        await store.repo.finish_unsuccessfully(
            task.id, Status.FAILED, "generation_failed", "boom", refund=True, outbox=OutboxSpec("failed")
        )
        assert await CallbackDeliverer(store.repo, RENDERERS, SECRET, DEV).deliver_due() == 2
        hits = receiver.hits("/cb")
        assert [json.loads(h.body)["event"] for h in hits] == ["processing", "failed"]
        assert hits[1].at - hits[0].at >= 0.29  # the second waited for the first's answer

    with_store(tmp_path, scenario)
