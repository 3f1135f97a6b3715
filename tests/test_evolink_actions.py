"""Issue 4: every action on a finished image through EvoLink's models, on the tiny engine over HTTP.

Pixels and sizes come from the real tiny model; the checks of which sources an action accepts run
on the fake engine (tests/fake_engine.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from PIL import Image

from openmj.core.tasks import Operation, Speed, TaskRequest
from tests.helpers import image, run, submit, wait_done
from tests.live import LiveServer

pytestmark = pytest.mark.timeout(600)
GEN = "/v1/images/generations"


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_key(credits=100_000)


@pytest.fixture(scope="module")
def client(server: LiveServer, key: str) -> httpx.Client:
    return server.client(key)


@pytest.fixture(scope="module")
def grid(client: httpx.Client) -> dict[str, Any]:
    """A 3:2 imagine: V7 1344×896, so 672×448 on the 512-native tiny model."""
    done = run(client, {"model": "mj-v7", "prompt": "a harbour at dawn --ar 3:2 --seed 1"})
    assert image(done["results"][1]).size == (672, 448)
    return done


@pytest.fixture(scope="module")
def fake_client(fake_server: LiveServer) -> httpx.Client:
    return fake_server.client(fake_server.create_key(credits=100_000))


@pytest.fixture(scope="module")
def fake_grid(fake_client: httpx.Client) -> dict[str, Any]:
    """The same grid as `grid`, made by the fake engine."""
    done = run(fake_client, {"model": "mj-v7", "prompt": "a harbour at dawn --ar 3:2 --seed 1"})
    assert image(done["results"][1]).size == (672, 448)
    return done


@pytest.fixture(scope="module")
def upscaled(client: httpx.Client, grid: dict[str, Any]) -> dict[str, Any]:
    return run(client, {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 1}})


def test_upscale_standard_doubles_one_image(upscaled: dict[str, Any], grid: dict[str, Any]) -> None:
    assert len(upscaled["results"]) == 1
    assert "grid_url" not in upscaled
    up = image(upscaled["results"][0])
    assert up.size == (1344, 896)
    assert upscaled["usage"]["credits_reserved"] > 0
    # subtle: close to the source enlarged (low denoise), not a new picture
    src = image(grid["results"][1]).resize((1344, 896), Image.Resampling.LANCZOS)
    diff = sum(abs(a - b) for a, b in zip(up.tobytes()[::97], src.tobytes()[::97], strict=True))
    assert diff / len(up.tobytes()[::97]) < 60


def test_upscale_creative_differs_from_standard(
    client: httpx.Client, grid: dict[str, Any], upscaled: dict
) -> None:
    creative = run(
        client,
        {
            "model": "mj-v7-upscale",
            "model_params": {"task_id": grid["id"], "image_number": 1, "type": "creative"},
        },
    )
    a, b = image(creative["results"][0]), image(upscaled["results"][0])
    assert a.size == (1344, 896)
    assert a.tobytes() != b.tobytes()


def test_upscale_of_an_upscale_is_403(client: httpx.Client, upscaled: dict[str, Any]) -> None:
    r = client.post(
        GEN, json={"model": "mj-v7-upscale", "model_params": {"task_id": upscaled["id"], "image_number": 0}}
    )
    assert r.status_code == 403, r.text
    assert "upscaled" in r.json()["error"]["message"]


@pytest.mark.parametrize("kind", ["subtle", "strong"])
def test_variations_make_four_images_at_source_size(
    client: httpx.Client, grid: dict[str, Any], kind: str
) -> None:
    done = run(
        client,
        {
            "model": "mj-v7-variation",
            "model_params": {"task_id": grid["id"], "image_number": 2, "type": kind},
        },
    )
    assert len(done["results"]) == 4
    sizes = {image(u).size for u in done["results"]}
    assert sizes == {(672, 448)}
    seeds = [d["seed"] for d in done["result_data"]]
    assert len(set(seeds)) == 4 and seeds != [1, 2, 3, 4]  # new seeds, not the grid's
    assert "grid_url" in done


def test_remix_needs_a_prompt_and_makes_four(client: httpx.Client, grid: dict[str, Any]) -> None:
    r = client.post(
        GEN, json={"model": "mj-v7-remix", "model_params": {"task_id": grid["id"], "image_number": 0}}
    )
    assert r.status_code == 400
    done = run(
        client,
        {
            "model": "mj-v7-remix",
            "prompt": "the same harbour at night, lanterns",
            "model_params": {"task_id": grid["id"], "image_number": 0, "mode": "subtle"},
        },
    )
    assert len(done["results"]) == 4
    assert {image(u).size for u in done["results"]} == {(672, 448)}


def test_zoom_out_keeps_size_and_the_centre_is_the_source(client: httpx.Client, grid: dict[str, Any]) -> None:
    done = run(
        client,
        {"model": "mj-v7-outpaint", "model_params": {"task_id": grid["id"], "image_number": 3, "scale": 1.5}},
    )
    assert len(done["results"]) == 4
    src = image(grid["results"][3])
    shrunk = src.resize((448, 299), Image.Resampling.LANCZOS)  # 672/1.5 × 448/1.5
    x, y = (672 - 448) // 2, (448 - 299) // 2
    for url in done["results"]:
        out = image(url)
        assert out.size == (672, 448)
        assert out.crop((x, y, x + 448, y + 299)).tobytes() == shrunk.tobytes()
        # the border was painted, not left as a copy of the source's edge
        assert out.crop((0, 0, 672, y)).tobytes() != src.crop((0, 0, 672, y)).tobytes()


def test_pan_right_grows_the_canvas_and_keeps_the_source(client: httpx.Client, grid: dict[str, Any]) -> None:
    done = run(
        client,
        {
            "model": "mj-v7-pan",
            "model_params": {"task_id": grid["id"], "image_number": 0, "direction": "right", "scale": 1.5},
        },
    )
    src = image(grid["results"][0])
    assert len(done["results"]) == 4
    for url in done["results"]:
        out = image(url)
        assert out.size == (1008, 448)
        assert out.crop((0, 0, 672, 448)).tobytes() == src.tobytes()


def test_pan_up_puts_the_source_at_the_bottom(client: httpx.Client, grid: dict[str, Any]) -> None:
    done = run(
        client,
        {
            "model": "mj-v7-pan",
            "model_params": {"task_id": grid["id"], "image_number": 0, "direction": "up", "scale": 1.25},
        },
    )
    out = image(done["results"][0])
    assert out.size == (672, 560)
    assert out.crop((0, 112, 672, 560)).tobytes() == image(grid["results"][0]).tobytes()


def test_enhance_a_draft_and_refuse_a_fast_task(client: httpx.Client, grid: dict[str, Any]) -> None:
    draft = run(
        client,
        {
            "model": "mj-v7",
            "prompt": "a harbour at dawn --ar 3:2 --seed 1",
            "model_params": {"speed": "draft"},
        },
    )
    assert image(draft["results"][0]).size == (336, 224)
    done = run(
        client, {"model": "mj-v7-enhance", "model_params": {"task_id": draft["id"], "image_number": 2}}
    )
    assert len(done["results"]) == 1
    assert image(done["results"][0]).size == (672, 448)
    assert done["result_data"][0]["seed"] == draft["result_data"][2]["seed"]  # same composition seed
    r = client.post(
        GEN, json={"model": "mj-v7-enhance", "model_params": {"task_id": grid["id"], "image_number": 0}}
    )
    assert r.status_code == 400
    assert "draft" in r.json()["error"]["message"]


BAD = [
    ("image_number 4", {"model": "mj-v7-upscale", "model_params": {"image_number": 4}}, 400),
    ("image_number negative", {"model": "mj-v7-variation", "model_params": {"image_number": -1}}, 400),
    ("image_number not int", {"model": "mj-v7-variation", "model_params": {"image_number": "1"}}, 400),
    ("missing task_id", {"model": "mj-v7-upscale", "model_params": {}}, 400),
    ("bad type", {"model": "mj-v7-upscale", "model_params": {"type": "huge"}}, 400),
    ("scale too big", {"model": "mj-v7-outpaint", "model_params": {"scale": 2.5}}, 400),
    ("scale too small", {"model": "mj-v7-pan", "model_params": {"scale": 1.0}}, 400),
    ("bad direction", {"model": "mj-v7-pan", "model_params": {"direction": "north"}}, 400),
    ("draft speed on an action", {"model": "mj-v7-variation", "model_params": {"speed": "draft"}}, 400),
]


@pytest.mark.parametrize(("what", "body", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_action_requests(
    client: httpx.Client, grid: dict[str, Any], what: str, body: dict, status: int
) -> None:
    body = {**body, "model_params": {"task_id": grid["id"], **body["model_params"]}}
    if what == "missing task_id":
        body["model_params"].pop("task_id")
    before = client.get("/v1/tasks").json()["total"]
    r = client.post(GEN, json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert client.get("/v1/tasks").json()["total"] == before


def test_unknown_and_foreign_and_unfinished_sources(
    fake_server: LiveServer, fake_client: httpx.Client, fake_grid: dict
) -> None:
    server, client, grid = fake_server, fake_client, fake_grid
    r = client.post(
        GEN, json={"model": "mj-v7-upscale", "model_params": {"task_id": "task-unified-1-nosuchid"}}
    )
    assert r.status_code == 404
    other = server.client(server.create_key())
    r = other.post(GEN, json={"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"]}})
    assert r.status_code == 404
    # an upscale has one image: image_number 1 is out of range
    up = run(client, {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 0}})
    r = client.post(
        GEN, json={"model": "mj-v7-variation", "model_params": {"task_id": up["id"], "image_number": 1}}
    )
    assert r.status_code == 400
    # a task that has not finished yet cannot be acted on
    with server.runtime.engine.held():  # the fake engine keeps it unfinished, however slow this is
        pending = submit(client, {"model": "mj-v7", "prompt": "a slow one --q 4"})
        r = client.post(GEN, json={"model": "mj-v7-variation", "model_params": {"task_id": pending["id"]}})
        assert r.status_code == 400
        assert "completed" in r.json()["error"]["message"]
    wait_done(client, pending["id"])


def test_reroll_and_make_square_core_operations(
    server: LiveServer, key: str, client: httpx.Client, grid: dict
) -> None:
    """No EvoLink model names these; the core runs them (midjourney-proxy exposes them)."""
    service = server.runtime.service
    api_key = server.call(service.authenticate(key))
    reroll = server.call(
        service.submit(
            api_key,
            TaskRequest(operation=Operation.REROLL, model="mj-v7", dialect="evolink", parent_id=grid["id"]),
        )
    )
    done = wait_done(client, reroll.id)
    assert len(done["results"]) == 4
    assert {image(u).size for u in done["results"]} == {(672, 448)}
    # the source has --seed 1, and Reroll keeps --seed: the same pictures again
    assert [d["seed"] for d in done["result_data"]] == [1, 2, 3, 4]
    square = server.call(
        service.submit(
            api_key,
            TaskRequest(
                operation=Operation.MAKE_SQUARE,
                model="mj-v7",
                dialect="evolink",
                parent_id=grid["id"],
                parent_index=0,
                speed=Speed.FAST,
            ),
        )
    )
    done = wait_done(client, square.id)
    out = image(done["results"][0])
    assert out.size == (672, 672)
    assert out.crop((0, 112, 672, 560)).tobytes() == image(grid["results"][0]).tobytes()
