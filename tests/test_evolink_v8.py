"""EvoLink's mj-v8.1 and mj-v8.2 models over real HTTP: quality hd, 24-image drafts, 30-day links,
the models' own field rules, and refusals that charge nothing.

Sizes, counts, prices and links are the service's, so the fake engine answers (tests/fake_engine.py
plans with the same function as the local engine); the pictures of each family are in
tests/test_model_families.py.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from PIL import Image

from tests.helpers import balance, run, submit
from tests.http_client import HTTP
from tests.live import LiveServer

pytestmark = pytest.mark.timeout(300)
DAY = 86400


@pytest.fixture(scope="module")
def client(fake_server: LiveServer) -> httpx.Client:
    return fake_server.client(fake_server.create_key(credits=100_000))


def sizes(task: dict[str, Any]) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(HTTP.get(u, timeout=30).content)).size for u in task["results"]]


def expiry(url: str) -> float:
    return float(parse_qs(urlparse(url).query)["exp"][0])


def test_v81_hd_renders_larger_images_than_standard_and_costs_more(client: httpx.Client) -> None:
    before = balance(client)
    standard = run(client, {"model": "mj-v8.1", "prompt": "a harbour --ar 3:2 --seed 3"})
    mid = balance(client)
    hd = run(client, {"model": "mj-v8.1", "prompt": "a harbour --ar 3:2 --seed 3", "quality": "hd"})
    after = balance(client)
    assert len(standard["results"]) == len(hd["results"]) == 4
    (w, h), (hw, hh) = sizes(standard)[0], sizes(hd)[0]
    assert w > h and (hw, hh) == (2 * w, 2 * h)
    assert before - mid == standard["usage"]["credits_reserved"] == 8
    assert mid - after == hd["usage"]["credits_reserved"] == 12  # hd: 1.5 × the fast price


def test_v81_draft_gives_24_sketches_at_half_size(client: httpx.Client) -> None:
    full = run(client, {"model": "mj-v8.1", "prompt": "a fox --seed 9"})
    draft = run(client, {"model": "mj-v8.1", "prompt": "a fox --seed 9", "model_params": {"speed": "draft"}})
    assert len(draft["results"]) == 24 and len(set(draft["results"])) == 24
    got = sizes(draft)
    (w, h) = sizes(full)[0]
    assert set(got) == {(w // 2, h // 2)}


def test_v8_links_live_30_days_v7_links_one(client: httpx.Client) -> None:
    v8 = run(client, {"model": "mj-v8.1", "prompt": "a bell --seed 1"})
    v7 = run(client, {"model": "mj-v7", "prompt": "a bell --seed 1"})
    # from the task's own creation: the link lives its lifetime after the task finished
    assert 30 * DAY <= expiry(v8["results"][0]) - v8["created"] < 30 * DAY + 600
    assert DAY <= expiry(v7["results"][0]) - v7["created"] < DAY + 600


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"model": "mj-v7", "prompt": "a cat", "quality": "hd"}, "quality", "only available for V8.x"),
        (
            {"model": "mj-v8.1", "prompt": "a cat", "quality": "hd", "model_params": {"speed": "draft"}},
            "quality",
            "cannot be combined with draft",
        ),
        ({"model": "mj-v8.1", "prompt": "a cat", "quality": "4k"}, "quality", "quality"),
        ({"model": "mj-v8.2", "prompt": "x" * 2049}, "prompt", "the maximum is 2048"),
        ({"model": "mj-v8.1", "prompt": "a cat --niji 7"}, "prompt", "--niji"),
    ],
)
def test_bad_v8_requests_are_400_and_charge_nothing(
    client: httpx.Client, body: dict[str, Any], param: str, message: str
) -> None:
    before = balance(client)
    r = client.post("/v1/images/generations", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert message in err["message"] and err.get("param") == param
    assert balance(client) == before


def test_v81_actions_take_fast_only_and_v82_picks_any_of_24_sketches(client: httpx.Client) -> None:
    grid = run(client, {"model": "mj-v8.1", "prompt": "a kite --seed 4"})
    turbo = {"task_id": grid["id"], "image_number": 1, "speed": "turbo"}
    r = client.post("/v1/images/generations", json={"model": "mj-v8.1-variation", "model_params": turbo})
    assert r.status_code == 400 and "use one of: fast" in r.json()["error"]["message"]
    vary = run(client, {"model": "mj-v8.1-variation", "model_params": {**turbo, "speed": "fast"}})
    assert len(vary["results"]) == 4

    draft = run(client, {"model": "mj-v8.2", "prompt": "a kite --seed 4", "model_params": {"speed": "draft"}})
    assert len(draft["results"]) == 24
    picked = run(
        client,
        {
            "model": "mj-v8.2-remix",
            "prompt": "a red kite",
            "model_params": {"task_id": draft["id"], "image_number": 23},
        },
    )
    assert len(picked["results"]) == 4
    r = client.post(
        "/v1/images/generations",
        json={"model": "mj-v8.1-variation", "model_params": {"task_id": draft["id"], "image_number": 23}},
    )
    assert r.status_code == 400 and "between 0 and 3" in r.json()["error"]["message"]
    submit(
        client,
        {"model": "mj-v8.2-variation", "model_params": {"task_id": draft["id"], "image_number": 24}},
        400,
    )
