"""Idempotent creates (core/idempotency.py): the same `Idempotency-Key` on a create returns the
first task, charged once, through every API; on SQLite and on PostgreSQL under concurrency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fake_engine import FakeEngine
from tests.helpers import balance, task_count
from tests.live import LiveServer, make_settings

#: per API: a create, and where its answer names the task
CREATES: dict[str, tuple[str, dict[str, Any], Callable[[dict[str, Any]], str]]] = {
    "evolink": ("/v1/images/generations", {"model": "mj-v7", "prompt": "a quiet harbour"}, lambda a: a["id"]),
    "kie": (
        "/api/v1/mj/generate",
        {"taskType": "mj_txt2img", "prompt": "a quiet harbour"},
        lambda a: a["data"]["taskId"],
    ),
    "apixo": (
        "/api/v1/generateTask/midjourney",
        {"request_type": "async", "input": {"mode": "text-to-image", "prompt": "a quiet harbour"}},
        lambda a: a["data"]["taskId"],
    ),
    "mjproxy": ("/mj/submit/imagine", {"prompt": "a quiet harbour"}, lambda a: a["result"]),
}


def create(c: httpx.Client, api: str, idem: str | None, **change: Any) -> httpx.Response:
    path, body, _ = CREATES[api]
    headers = {"Idempotency-Key": idem} if idem is not None else {}
    return c.post(path, json={**body, **change}, headers=headers)


@pytest.mark.parametrize("api", list(CREATES))
def test_a_repeated_create_returns_the_first_task_and_charges_once(fake_server: LiveServer, api: str) -> None:
    key = fake_server.create_key(credits=100)
    task_of = CREATES[api][2]
    with fake_server.client(key) as c:
        first = create(c, api, f"retry-{api}")
        assert first.status_code == 200, first.text
        paid = balance(c)
        again = create(c, api, f"retry-{api}")
        assert again.status_code == 200, again.text
        assert task_of(again.json()) == task_of(first.json())
        assert balance(c) == paid and task_count(c) == 1  # one task, one charge
        other = create(c, api, f"another-{api}")  # a new key is a new create
        assert task_of(other.json()) != task_of(first.json()) and task_count(c) == 2
        plain = [create(c, api, None) for _ in range(2)]  # without the header: two creates
        assert task_of(plain[0].json()) != task_of(plain[1].json()) and task_count(c) == 4


def test_a_key_reused_with_another_request_is_refused(fake_server: LiveServer) -> None:
    key = fake_server.create_key(credits=100)
    with fake_server.client(key) as c:
        assert create(c, "evolink", "same").status_code == 200
        paid = balance(c)
        refused = create(c, "evolink", "same", prompt="a loud harbour")
        assert refused.status_code == 409, refused.text
        assert "Idempotency-Key" in refused.json()["error"]["message"]
        assert balance(c) == paid and task_count(c) == 1
        bad = create(c, "mjproxy", "x" * 300)  # midjourney-proxy's own envelope
        assert bad.json()["code"] != 1 and "Idempotency-Key" in bad.json()["description"], bad.text
        assert balance(c) == paid and task_count(c) == 1


def test_idempotency_keys_belong_to_their_api_key(fake_server: LiveServer) -> None:
    one, two = fake_server.create_key(credits=100), fake_server.create_key(credits=100)
    with fake_server.client(one) as c1, fake_server.client(two) as c2:
        a = create(c1, "evolink", "shared-name").json()["id"]
        b = create(c2, "evolink", "shared-name").json()["id"]
        assert a != b
        assert c2.get(f"/v1/tasks/{a}").status_code == 404  # never another key's task


def test_a_key_is_remembered_for_24_hours(fake_server: LiveServer) -> None:
    key = fake_server.create_key(credits=100)
    with fake_server.client(key) as c:
        first = create(c, "evolink", "yesterday").json()["id"]
        age_the_key(fake_server, "yesterday", 24 * 3600 + 60)
        later = create(c, "evolink", "yesterday").json()["id"]
        assert later != first and task_count(c) == 2


def age_the_key(live: LiveServer, name: str, seconds: float) -> None:
    async def age() -> None:
        async with live.runtime.repo.db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE idempotency_keys SET created_at = created_at - :s WHERE key = :k"),
                {"s": seconds, "k": name},
            )

    live.call(age())


def concurrent_creates(live: LiveServer, n: int) -> tuple[set[str], float, int]:
    key = live.create_key(credits=1000)
    with live.client(key) as c, ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: create(c, "evolink", "at-once"), range(n)))
        statuses = [a.status_code for a in answers]
        ids = {a.json()["id"] for a in answers if a.status_code == 200}
        # a create that met the first one mid-transaction may be told to retry (409, Retry-After)
        assert set(statuses) <= {200, 409}, statuses
        retried = {create(c, "evolink", "at-once").json()["id"]}
        return ids | retried, 1000 - balance(c), task_count(c)


def test_concurrent_creates_with_one_key_make_one_task(fake_server: LiveServer) -> None:
    ids, spent, tasks = concurrent_creates(fake_server, 8)
    assert len(ids) == 1 and tasks == 1 and spent == 8


@pytest.fixture
def pg_server(tmp_path: Path, pg_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path, database_url=pg_url), FakeEngine()) as live:
        yield live


def test_concurrent_creates_on_postgres_make_one_task(pg_server: LiveServer) -> None:
    ids, spent, tasks = concurrent_creates(pg_server, 12)
    assert len(ids) == 1 and tasks == 1 and spent == 8, (ids, spent, tasks)


def test_the_reaper_forgets_keys_past_the_window(fake_server: LiveServer) -> None:
    key = fake_server.create_key(credits=100)
    owner = fake_server.call(fake_server.runtime.service.authenticate(key)).id
    with fake_server.client(key) as c:
        create(c, "evolink", "old-one")
    repo = fake_server.runtime.repo
    assert fake_server.call(repo.idempotent_task(owner, "old-one", 0)) is not None
    age_the_key(fake_server, "old-one", 2 * 24 * 3600)
    assert fake_server.call(repo.delete_idempotency_before(time.time() - 24 * 3600)) >= 1
    assert fake_server.call(repo.idempotent_task(owner, "old-one", 0)) is None
