"""Issue 7: keys, credits (reserve/capture/refund, the race), limits, model access, moderation.

Tasks that run do so on the fake engine (tests/fake_engine.py): credits and limits, not pictures.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_engine import FakeEngine
from tests.helpers import balance
from tests.helpers import wait_task as wait
from tests.live import LiveServer, make_settings, wait_until

pytestmark = pytest.mark.timeout(600)
GEN = "/v1/images/generations"
FAST_IMAGINE = 8.0  # the default price of a fast imagine (openmj.core.pricing)


def ledger_sum(server: LiveServer, key: str) -> float:
    api_key = server.call(server.runtime.service.authenticate(key))
    return server.call(server.runtime.repo.ledger_sum(api_key.id))


# --------------------------------------------------------------------------- credits


def test_forty_simultaneous_submits_with_credits_for_five(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=5 * FAST_IMAGINE)
    statuses: list[int] = []
    barrier = threading.Barrier(40)

    def one() -> None:
        with api_server.client(key) as c:
            barrier.wait()
            statuses.append(c.post(GEN, json={"model": "mj-v7", "prompt": "a cat"}).status_code)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 5 + [402] * 35
    client = api_server.client(key)
    assert balance(client) == 0
    assert client.get("/v1/tasks").json()["total"] == 5
    assert ledger_sum(api_server, key) == 0


def test_402_in_each_dialects_form(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=1)
    c = api_server.client(key)
    r = c.post(GEN, json={"model": "mj-v7", "prompt": "a cat"})
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_quota"
    r = c.post("/api/v1/mj/generate", json={"taskType": "mj_txt2img", "prompt": "a cat"})
    assert r.json()["code"] == 402
    r = c.post(
        "/api/v1/generateTask/midjourney", json={"input": {"mode": "text-to-image", "prompt": "a cat"}}
    )
    assert r.status_code == 402 and r.json()["code"] == 402
    r = c.post("/mj/submit/imagine", json={"prompt": "a cat"})
    assert r.json()["code"] != 1
    assert balance(c) == 1


def test_cancel_pending_refunds(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=100)
    c = api_server.client(key)
    task = c.post(GEN, json={"model": "mj-v7", "prompt": "a cat"}).json()
    assert balance(c) == 100 - task["usage"]["credits_reserved"]
    r = c.post(f"/v1/tasks/{task['id']}/cancel")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["error"]["code"] == "request_cancelled"
    assert body["task_info"]["can_cancel"] is False
    assert balance(c) == 100
    assert ledger_sum(api_server, key) == 100
    # a finished task cannot be cancelled again
    assert c.post(f"/v1/tasks/{task['id']}/cancel").status_code == 400


def test_cancel_mid_run_stops_the_engine_and_refunds(tmp_path: Path) -> None:
    engine = FakeEngine(steps=150, step_seconds=0.1)  # 15 s: longer than the cancel call waits
    with LiveServer(make_settings(tmp_path), engine) as server:
        key = server.create_key(credits=100)
        c = server.client(key)
        task = c.post(GEN, json={"model": "mj-v7", "prompt": "a long one --ar 16:9 --q 4 --seed 3"}).json()
        wait_until(lambda: c.get(f"/v1/tasks/{task['id']}").json()["progress"] >= 10, 60)
        body = c.post(f"/v1/tasks/{task['id']}/cancel").json()
        assert body["status"] == "cancelled", body
        run = engine.run_for(task["id"])
        assert run.outcome == "cancelled" and run.done < run.steps  # stopped at a step, not at the end
        assert balance(c) == 100
        assert "results" not in body


def test_time_out_fails_and_refunds(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, task_timeout_seconds=1.0)
    with LiveServer(settings, FakeEngine(steps=100, step_seconds=0.1)) as srv:  # a 10 s job
        c = srv.client(srv.create_key(credits=50))
        task = c.post(GEN, json={"model": "mj-v7", "prompt": "slow --ar 16:9 --q 4"}).json()
        done = wait(c, task["id"])
        assert done["status"] == "failed"
        assert done["error"]["code"] == "generation_timeout"
        assert balance(c) == 50


def test_completed_task_is_charged_once(fake_server: LiveServer) -> None:
    server = fake_server
    key = server.create_key(credits=100)
    c = server.client(key)
    task = c.post(GEN, json={"model": "mj-v7", "prompt": "a hill --seed 1"}).json()
    done = wait(c, task["id"])
    assert done["status"] == "completed"
    assert done["usage"]["credits_used"] == task["usage"]["credits_reserved"]
    assert balance(c) == 100 - task["usage"]["credits_reserved"]
    assert ledger_sum(server, key) == balance(c)
    credits = c.get("/v1/credits").json()["data"]
    assert credits["token"]["used_credits"] == task["usage"]["credits_reserved"]


def test_group_multiplier_and_price_overrides(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, run_worker=False, group_multipliers={"vip": 0.5}, prices={"imagine:fast": 10}
    )
    with LiveServer(settings, None) as srv:
        normal = (
            srv.client(srv.create_key(credits=100)).post(GEN, json={"model": "mj-v7", "prompt": "a"}).json()
        )
        vip = srv.client(srv.create_key(credits=100, group="vip")).post(
            GEN, json={"model": "mj-v7", "prompt": "a"}
        )
        assert normal["usage"]["credits_reserved"] == 10
        assert vip.json()["usage"]["credits_reserved"] == 5
        assert vip.json()["usage"]["user_group"] == "vip"


# --------------------------------------------------------------------------- limits and access


def test_rpm_limit_answers_429_with_retry_after(api_server: LiveServer) -> None:
    c = api_server.client(api_server.create_key(credits=100, rpm=3))
    codes = [c.get("/v1/tasks").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = c.get("/v1/tasks")
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_concurrency_limit(api_server: LiveServer) -> None:
    c = api_server.client(api_server.create_key(credits=100, concurrency=2))
    assert [c.post(GEN, json={"model": "mj-v7", "prompt": "a"}).status_code for _ in range(2)] == [200, 200]
    r = c.post(GEN, json={"model": "mj-v7", "prompt": "a"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    r = c.post("/mj/submit/imagine", json={"prompt": "a"})
    assert r.json()["code"] == 23  # midjourney-proxy: queue full


def test_model_access_is_403(api_server: LiveServer) -> None:
    c = api_server.client(api_server.create_key(credits=100, models=["mj-v7-upscale"]))
    r = c.post(GEN, json={"model": "mj-v7", "prompt": "a cat"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "model_access_denied"
    assert c.get("/v1/tasks").json()["total"] == 0


def test_disabled_and_expired_keys(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=100)
    api_key = api_server.call(api_server.runtime.service.authenticate(key))
    api_server.call(api_server.runtime.repo.set_disabled(api_key.id, True))
    r = api_server.client(key).post(GEN, json={"model": "mj-v7", "prompt": "a"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_disabled"
    expired = api_server.create_key(credits=100, expires_at=time.time() - 1)
    r = api_server.client(expired).get("/v1/tasks")
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_expired"


# --------------------------------------------------------------------------- moderation


@pytest.fixture(scope="module")
def moderated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENMJ_MODERATION_WORDS", "forbiddenword,re:secret\\d{1,6}")
    settings = make_settings(tmp_path_factory.mktemp("mod"), run_worker=False)
    try:
        with LiveServer(settings, None) as srv:
            yield srv
    finally:
        mp.undo()


@pytest.mark.parametrize("prompt", ["a nude figure", "a forbiddenword here", "the secret42 plan"])
def test_banned_prompt_fails_the_task_in_evolink(moderated: LiveServer, prompt: str) -> None:
    c = moderated.client(moderated.create_key(credits=100))
    r = c.post(GEN, json={"model": "mj-v7", "prompt": prompt})
    assert r.status_code == 200
    body = c.get(f"/v1/tasks/{r.json()['id']}").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "content_policy_violation"
    assert balance(c) == 100  # never charged


def test_clean_prompt_is_not_moderated(moderated: LiveServer) -> None:
    c = moderated.client(moderated.create_key(credits=100))
    r = c.post(GEN, json={"model": "mj-v7", "prompt": "Essex countryside, a forbidden city"})
    assert c.get(f"/v1/tasks/{r.json()['id']}").json()["status"] == "pending"


def test_banned_prompt_in_the_other_dialects(moderated: LiveServer) -> None:
    c = moderated.client(moderated.create_key(credits=100))
    r = c.post("/mj/submit/imagine", json={"prompt": "a nude figure"}).json()
    assert r["code"] == 24
    assert r["properties"]["bannedWord"] == "nude"
    kie = c.post("/api/v1/mj/generate", json={"taskType": "mj_txt2img", "prompt": "a nude figure"}).json()
    record = c.get("/api/v1/mj/record-info", params={"taskId": kie["data"]["taskId"]}).json()["data"]
    assert record["successFlag"] in (2, 3)
    assert record["errorMessage"].lower().startswith("content policy")
    apixo = c.post(
        "/api/v1/generateTask/midjourney",
        json={"input": {"mode": "text-to-image", "prompt": "a nude figure"}},
    ).json()
    status = c.get("/api/v1/statusTask/midjourney", params={"taskId": apixo["data"]["taskId"]}).json()["data"]
    assert status["state"] == "failed" and status["failCode"] == "CONTENT_VIOLATION"
    assert balance(c) == 100


def test_ledger_sum_always_equals_balance(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=64)
    c = api_server.client(key)

    async def burst() -> None:
        async with httpx.AsyncClient(
            base_url=api_server.url, headers={"Authorization": f"Bearer {key}"}
        ) as ac:
            rs = await asyncio.gather(
                *(ac.post(GEN, json={"model": "mj-v7", "prompt": "x"}) for _ in range(12))
            )
            for r in rs[:3]:
                if r.status_code == 200:
                    await ac.post(f"/v1/tasks/{r.json()['id']}/cancel")

    asyncio.run(burst())
    assert ledger_sum(api_server, key) == balance(c)
    assert balance(c) >= 0
