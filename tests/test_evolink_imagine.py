"""Issue 2: imagine end to end through the EvoLink API, on the tiny local engine, over real HTTP.

Pictures, sizes and seeds come from the real tiny model; prices and media links are checked on the
fake engine (tests/fake_engine.py).
"""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.helpers import create
from tests.helpers import wait_task as wait_done
from tests.http_client import HTTP
from tests.live import LiveServer, wait_until

pytestmark = pytest.mark.timeout(300)


def png(client: httpx.Client, url: str) -> Image.Image:
    r = HTTP.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(r.content))


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_key(credits=10_000)


@pytest.fixture(scope="module")
def client(server: LiveServer, key: str) -> httpx.Client:
    return server.client(key)


@pytest.fixture(scope="module")
def fake_client(fake_server: LiveServer) -> httpx.Client:
    return fake_server.client(fake_server.create_key(credits=10_000))


@pytest.fixture(scope="module")
def lighthouse(client: httpx.Client) -> dict[str, Any]:
    """The issue's own example, with progress sampled while it runs."""
    created = create(client, "a lighthouse at dusk --ar 16:9 --seed 42")
    seen = []

    def finished() -> dict[str, Any] | None:
        body = client.get(f"/v1/tasks/{created['id']}").json()
        seen.append((body["status"], body["progress"]))
        return body if body["status"] in ("completed", "failed") else None

    body = wait_until(finished, 120, 0.05, "the lighthouse")
    return {"created": created, "final": body, "seen": seen}


def test_create_answers_pending_task_object(lighthouse: dict[str, Any]) -> None:
    c = lighthouse["created"]
    assert set(c) >= {"created", "id", "model", "object", "progress", "status", "task_info", "type", "usage"}
    assert c["id"].startswith("task-unified-")
    assert c["model"] == "mj-v7"
    assert c["object"] == "image.generation.task"
    assert c["type"] == "image"
    assert c["status"] == "pending"
    assert c["progress"] == 0
    assert c["task_info"]["can_cancel"] is True
    assert isinstance(c["task_info"]["estimated_time"], int) and c["task_info"]["estimated_time"] > 0
    assert c["usage"]["billing_rule"] == "per_call"
    assert c["usage"]["credits_reserved"] > 0
    assert c["usage"]["user_group"] == "default"
    assert abs(c["created"] - time.time()) < 120


def test_completed_with_four_distinct_16x9_pngs(client: httpx.Client, lighthouse: dict[str, Any]) -> None:
    final = lighthouse["final"]
    assert final["status"] == "completed", final
    assert final["progress"] == 100
    assert final["task_info"]["can_cancel"] is False
    assert len(final["results"]) == 4
    images = [png(client, u) for u in final["results"]]
    # V7 16:9 is 1456×816; the tiny model is 512-native, so half of it on each side
    assert {im.size for im in images} == {(728, 408)}
    assert abs(728 / 408 - 16 / 9) / (16 / 9) < 0.01
    digests = {hashlib.sha256(im.tobytes()).hexdigest() for im in images}
    assert len(digests) == 4
    assert [d["seed"] for d in final["result_data"]] == [42, 43, 44, 45]
    grid = png(client, final["grid_url"])
    assert grid.size == (2 * 728, 2 * 408)
    # the grid's top-left quarter is image 1 (U1)
    assert grid.crop((0, 0, 728, 408)).tobytes() == images[0].convert(grid.mode).tobytes()


def test_progress_rises(lighthouse: dict[str, Any]) -> None:
    progresses = [p for _, p in lighthouse["seen"]]
    assert progresses == sorted(progresses), "progress never goes backwards"
    assert any(0 < p < 100 for st, p in lighthouse["seen"] if st == "processing"), lighthouse["seen"]
    assert progresses[-1] == 100


def test_same_seed_same_bytes(client: httpx.Client, lighthouse: dict[str, Any]) -> None:
    again = wait_done(client, create(client, "a lighthouse at dusk --ar 16:9 --seed 42")["id"])
    first = [HTTP.get(u).content for u in lighthouse["final"]["results"]]
    second = [HTTP.get(u).content for u in again["results"]]
    assert first == second


@pytest.mark.parametrize(
    ("ar", "size"),
    [("1:1", (512, 512)), ("2:3", (448, 672)), ("21:9", (840, 360))],
)
def test_sizes_follow_the_v7_table(client: httpx.Client, ar: str, size: tuple[int, int]) -> None:
    done = wait_done(client, create(client, f"a red fox --ar {ar} --seed 7")["id"])
    assert done["status"] == "completed", done
    for url in done["results"]:
        assert png(client, url).size == size
    w, h = (int(x) for x in ar.split(":"))
    assert abs(size[0] / size[1] - w / h) / (w / h) < 0.01


def test_draft_is_half_size_and_cheaper(client: httpx.Client) -> None:
    fast = create(client, "a small boat --seed 3")
    draft = create(client, "a small boat --seed 3", model_params={"speed": "draft"})
    assert draft["usage"]["credits_reserved"] < fast["usage"]["credits_reserved"]
    done = wait_done(client, draft["id"])
    assert done["status"] == "completed"
    assert png(client, done["results"][0]).size == (256, 256)
    wait_done(client, fast["id"])


def test_speed_flags_in_prompt_are_stripped(fake_client: httpx.Client) -> None:
    client = fake_client
    task = create(client, "a tower --turbo --seed 5")
    assert task["status"] == "pending"
    turbo = create(client, "a tower --seed 5", model_params={"speed": "turbo"})
    assert turbo["usage"]["credits_reserved"] > task["usage"]["credits_reserved"]
    wait_done(client, task["id"])
    wait_done(client, turbo["id"])


def test_list_and_batch(client: httpx.Client, lighthouse: dict[str, Any]) -> None:
    tid = lighthouse["created"]["id"]
    listed = client.get("/v1/tasks", params={"page_size": 100}).json()
    assert listed["object"] == "list"
    ids = [t["id"] for t in listed["data"]]
    assert tid in ids
    assert all("results" not in t for t in listed["data"])  # list items carry no result links
    created = [t["created"] for t in listed["data"]]
    assert created == sorted(created, reverse=True)
    completed = client.get("/v1/tasks", params={"status": "completed", "page_size": 100}).json()
    assert all(t["status"] == "completed" for t in completed["data"])
    batch = client.post("/v1/tasks/batch", json={"task_ids": [tid, "task-unified-1-nothere0"]}).json()
    assert [t["id"] for t in batch["data"]] == [tid]
    assert len(batch["data"][0]["results"]) == 4


def test_another_keys_task_is_404(server: LiveServer, lighthouse: dict[str, Any]) -> None:
    other = server.client(server.create_key())
    r = other.get(f"/v1/tasks/{lighthouse['created']['id']}")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    batch = other.post("/v1/tasks/batch", json={"task_ids": [lighthouse["created"]["id"]]}).json()
    assert batch["data"] == []


def test_media_links_are_signed(client: httpx.Client, lighthouse: dict[str, Any]) -> None:
    url = lighthouse["final"]["results"][0]
    base, query = url.split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert int(params["exp"]) - time.time() > 23 * 3600  # EvoLink links live 24 h
    assert int(params["exp"]) - time.time() <= 24 * 3600
    tampered_sig = params["sig"][:-1] + ("0" if params["sig"][-1] != "0" else "1")
    cases = {
        "missing signature": base,
        "changed signature": f"{base}?exp={params['exp']}&kid={params['kid']}&sig={tampered_sig}",
        "changed expiry": f"{base}?exp={int(params['exp']) + 3600}&kid={params['kid']}&sig={params['sig']}",
        "other file": url.replace("/0.png", "/1.png"),
    }
    for what, bad in cases.items():
        r = HTTP.get(bad)
        assert r.status_code == 403, what


def test_expired_link_is_403_and_files_are_deleted(
    fake_server: LiveServer, fake_client: httpx.Client
) -> None:
    server, client = fake_server, fake_client
    from openmj.media.signing import UrlSigner
    from tests.live import TEST_SECRET

    done = wait_done(client, create(client, "a cup of tea --seed 11")["id"])
    url = done["results"][0]
    path = url.split("?")[0].removeprefix(server.url)
    kid = dict(p.split("=", 1) for p in url.split("?")[1].split("&"))["kid"]
    signer = UrlSigner(TEST_SECRET.encode(), server.url)
    assert HTTP.get(signer.sign(path, time.time() + 60, kid)).status_code == 200
    assert HTTP.get(signer.sign(path, time.time() - 1, kid)).status_code == 403
    # the periodic job, run as if 25 hours had passed, deletes the task's files
    deleted = server.call(server.runtime.reaper.delete_expired_media(time.time() + 25 * 3600))
    assert deleted >= 1
    assert HTTP.get(signer.sign(path, time.time() + 60, kid)).status_code == 404
    task_dir = server.settings.data_dir / "media" / done["id"]
    assert not task_dir.exists()


def test_healthz_and_metrics(server: LiveServer) -> None:
    r = HTTP.get(f"{server.url}/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    m = HTTP.get(f"{server.url}/metrics")
    assert m.status_code == 200
    assert 'openmj_tasks{operation="imagine",status="completed"}' in m.text  # tests/test_metrics.py: the rest
