"""Issue 14: the current model families as a user sees them, on their tiny twins (real
Flux2KleinPipeline, ZImagePipeline and FluxPipeline with random weights, built offline): every
image operation through the APIs, sizes, kept pixels, seeds, references, and a server with two
models routing `--niji` (midjourney-proxy's NIJI_JOURNEY) to the second one.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from openmj.core.mapping import model_size
from openmj.core.tasks import Operation
from openmj.engines.local.engine import IMAGE
from tests.helpers import balance, run, stored, submit, wait_done
from tests.http_client import HTTP
from tests.images import ImageServer, pattern, png
from tests.live import LiveServer, make_settings, wait_until
from tests.test_fake_engine import requests as action_requests

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

TWINS = ("tiny-flux2-klein", "tiny-z-image", "tiny-flux1-schnell")
NATIVE = 256  # the twins' native side (presets.py `_tiny_twin`)


def twin_engine(name: str, models_dir: Path) -> Any:
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import PRESETS

    engine = LocalEngine(PRESETS[name], models_dir, device="cpu")
    engine.load()
    return engine


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    srv = ImageServer()
    srv.add("/photo.png", png(pattern((320, 200), 5)))
    srv.add("/style.png", png(pattern((128, 128), 9)))
    yield srv
    srv.close()


@pytest.fixture(scope="module", params=TWINS)
def family(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> Iterator[tuple[str, LiveServer, httpx.Client]]:
    name: str = request.param
    engine = twin_engine(name, models_dir)
    with LiveServer(make_settings(tmp_path_factory.mktemp(f"data-{name}"), model=name), engine) as live:
        secret = live.create_key(credits=100_000)
        headers = {"Authorization": f"Bearer {secret}", "mj-api-secret": secret}
        with httpx.Client(base_url=live.url, headers=headers, timeout=60) as client:
            yield name, live, client


def pictures(task: dict[str, Any]) -> list[Image.Image]:
    out = []
    for url in task["results"]:
        r = HTTP.get(url, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        out.append(Image.open(io.BytesIO(r.content)).convert("RGB"))
    return out


def mj_wait(client: httpx.Client, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/mj/task/{task_id}/fetch").json()
        return body if body["status"] in ("SUCCESS", "FAILURE") else None

    body = wait_until(done, 300, 0.1, f"midjourney-proxy task {task_id}")
    assert body["status"] == "SUCCESS", body
    return body


def mj_submit(client: httpx.Client, path: str, body: dict[str, Any]) -> str:
    r = client.post(path, json=body)
    assert r.status_code == 200 and r.json()["code"] == 1, r.text
    return str(r.json()["result"])


def test_imagine_gives_four_images_of_the_ar_size(family: tuple[str, LiveServer, httpx.Client]) -> None:
    _name, _live, client = family
    done = run(client, {"model": "mj-v7", "prompt": "a harbour at dusk --ar 3:2 --seed 7"})
    got = pictures(done)
    want = model_size("3:2", NATIVE, 16)
    assert len(got) == 4 and {im.size for im in got} == {want}
    assert want[0] % 16 == 0 and want[1] % 16 == 0 and want[0] > want[1]
    assert len({im.tobytes() for im in got}) == 4  # four seeds, four pictures


def test_the_same_seed_gives_the_same_bytes(family: tuple[str, LiveServer, httpx.Client]) -> None:
    _name, _live, client = family
    body = {"model": "mj-v7", "prompt": "a lantern --seed 123 --ar 1:1"}
    a, b = pictures(run(client, body)), pictures(run(client, body))
    assert [im.tobytes() for im in a] == [im.tobytes() for im in b]
    other = pictures(run(client, {**body, "prompt": "a lantern --seed 124 --ar 1:1"}))
    assert other[0].tobytes() != a[0].tobytes()


def test_every_image_operation_completes(
    family: tuple[str, LiveServer, httpx.Client], images: ImageServer
) -> None:
    name, live, client = family
    photo = images.url("/photo.png")
    draft = run(
        client,
        {"model": "mj-v7", "prompt": "a harbour --ar 3:2 --seed 1", "model_params": {"speed": "draft"}},
    )
    bodies = action_requests(draft, photo)
    references = name == "tiny-flux2-klein"
    if not references:  # the last request carries --sref, which these families refuse (below)
        bodies[-1]["prompt"] = f"{photo} a cat --ar 2:3 --seed 4"
    ids = [submit(client, body)["id"] for body in bodies]
    # the operations no EvoLink model names, through midjourney-proxy
    ids.append(mj_submit(client, "/mj/submit/change", {"taskId": draft["id"], "action": "REROLL"}))
    square = f"MJ::Outpaint::100::1::{draft['id']}::SOLO"
    ids.append(mj_submit(client, "/mj/submit/action", {"taskId": draft["id"], "customId": square}))
    uri = "data:image/png;base64," + base64.b64encode(png(pattern((96, 96), 3))).decode()
    ids.append(mj_submit(client, "/mj/submit/blend", {"base64Array": [uri, uri], "dimensions": "SQUARE"}))
    # shorten reads the family's own text encoder (CLIP, or Qwen3 for FLUX.2 klein and Z-Image)
    ids.append(
        mj_submit(client, "/mj/submit/shorten", {"prompt": "a quiet harbour at dawn, fishing boats --ar 3:2"})
    )
    operations = set()
    for task_id in ids:
        task = stored(live, task_id)
        if task.dialect == "mjproxy":
            mj_wait(client, task_id)
        else:
            wait_done(client, task_id, 300)
        task = stored(live, task_id)
        operations.add(task.operation)
        assert task.engine_model == name
        if task.operation is Operation.SHORTEN:
            assert task.output is not None and len(task.output["prompts"]) == 5
            assert all(p.endswith(" --ar 3:2") for p in task.output["prompts"])
            assert len({s for _, s in task.output["tokens"]}) > 2  # measured on this encoder
            continue
        assert task.results and all(r.width % 8 == 0 for r in task.results)
    assert operations == set(IMAGE)


def test_inpaint_keeps_every_pixel_outside_the_mask(family: tuple[str, LiveServer, httpx.Client]) -> None:
    _name, _live, client = family
    grid = run(client, {"model": "mj-v7", "prompt": "a wall --ar 1:1 --seed 2"})
    source = pictures(grid)[0]
    box = (40, 40, 120, 120)
    x0, y0, x1, y1 = box
    mask = {
        "areas": [
            {"width": source.width, "height": source.height, "points": [x0, y0, x1, y0, x1, y1, x0, y1]}
        ]
    }
    done = run(
        client,
        {"model": "mj-v7-inpaint", "prompt": "a door", "model_params": {"task_id": grid["id"], "mask": mask}},
    )
    for out in pictures(done):
        assert out.size == source.size
        a, b = np.asarray(out).copy(), np.asarray(source).copy()
        # inside the polygon (PIL fills its edge pixels too): repainted and feathered
        a[y0 : y1 + 1, x0 : x1 + 1] = b[y0 : y1 + 1, x0 : x1 + 1] = 0
        assert np.array_equal(a, b)
        assert not np.array_equal(
            np.asarray(out)[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10],
            np.asarray(source)[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10],
        )


def test_outpaint_and_upscale_sizes(family: tuple[str, LiveServer, httpx.Client]) -> None:
    _name, _live, client = family
    grid = run(client, {"model": "mj-v7", "prompt": "a field --ar 3:2 --seed 5"})
    w, h = pictures(grid)[0].size
    on = {"task_id": grid["id"], "image_number": 1}
    up = pictures(run(client, {"model": "mj-v7-upscale", "model_params": on}))
    assert [im.size for im in up] == [(2 * w, 2 * h)]
    zoom = pictures(run(client, {"model": "mj-v7-outpaint", "model_params": {**on, "scale": 2.0}}))
    assert {im.size for im in zoom} == {(w, h)}
    pan = pictures(
        run(client, {"model": "mj-v7-pan", "model_params": {**on, "direction": "right", "scale": 1.5}})
    )
    assert all(im.height == h and im.width > w and im.width % 16 == 0 for im in pan)
    source = pictures(grid)[1]
    assert np.array_equal(np.asarray(pan[0])[:, :w], np.asarray(source))  # the source kept, exactly


def test_references_natively_or_a_400_with_no_charge(
    family: tuple[str, LiveServer, httpx.Client], images: ImageServer
) -> None:
    name, _live, client = family
    style = images.url("/style.png")
    body = {"model": "mj-v7", "prompt": f"a vase --seed 8 --sref {style}"}
    if name == "tiny-flux2-klein":  # FLUX.2 klein takes reference images itself
        with_ref = pictures(run(client, body))
        without = pictures(run(client, {"model": "mj-v7", "prompt": "a vase --seed 8"}))
        assert with_ref[0].tobytes() != without[0].tobytes()
        return
    before = balance(client)
    r = client.post("/v1/images/generations", json=body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "--sref" in message and name in message
    assert balance(client) == before
    r = client.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "tiles --tile"})
    assert r.status_code == 400 and "--tile" in r.json()["error"]["message"]
    assert balance(client) == before


def test_v81_quality_and_drafts_on_a_family(family: tuple[str, LiveServer, httpx.Client]) -> None:
    _name, _live, client = family
    standard = pictures(run(client, {"model": "mj-v8.1", "prompt": "a tower --seed 3"}))
    hd = pictures(run(client, {"model": "mj-v8.1", "prompt": "a tower --seed 3", "quality": "hd"}))
    assert hd[0].width == 2 * standard[0].width and hd[0].height == 2 * standard[0].height
    draft = pictures(
        run(client, {"model": "mj-v8.1", "prompt": "a tower --seed 3", "model_params": {"speed": "draft"}})
    )
    assert len(draft) == 24 and draft[0].width == standard[0].width // 2


# --------------------------------------------------------------------------- two models, one server


@pytest.fixture(scope="module")
def two_models(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> Iterator[tuple[LiveServer, httpx.Client]]:
    from openmj.engines.local.engine import LocalEngines

    engines = LocalEngines(
        [twin_engine("tiny-flux2-klein", models_dir), twin_engine("tiny-z-image", models_dir)]
    )
    settings = make_settings(tmp_path_factory.mktemp("data-two"), model="tiny-flux2-klein,tiny-z-image")
    with LiveServer(settings, engines) as live:
        secret = live.create_key(credits=100_000)
        headers = {"Authorization": f"Bearer {secret}", "mj-api-secret": secret}
        with httpx.Client(base_url=live.url, headers=headers, timeout=60) as client:
            yield live, client


def test_niji_goes_to_the_second_model(two_models: tuple[LiveServer, httpx.Client]) -> None:
    live, client = two_models
    mj = mj_submit(client, "/mj/submit/imagine", {"prompt": "a cat --seed 11"})
    niji = mj_submit(client, "/mj/submit/imagine", {"prompt": "a cat --seed 11", "botType": "NIJI_JOURNEY"})
    flag = mj_submit(client, "/mj/submit/imagine", {"prompt": "a cat --seed 11 --niji 7"})
    for task_id in (mj, niji, flag):
        mj_wait(client, task_id)
    assert stored(live, mj).engine_model == "tiny-flux2-klein"
    assert stored(live, niji).engine_model == stored(live, flag).engine_model == "tiny-z-image"
    assert client.get(f"/mj/task/{niji}/fetch").json()["botType"] == "NIJI_JOURNEY"
    a = stored(live, mj).results[0]
    b = stored(live, niji).results[0]
    assert (a.width, a.height) == (b.width, b.height)
    pix = [
        HTTP.get(client.get(f"/mj/task/{t}/fetch").json()["imageUrls"][0]["url"]).content for t in (mj, niji)
    ]
    assert pix[0] != pix[1]  # the same seed on another model: another picture
    # the upscale of a Niji image is made by the model that made it
    up = mj_submit(client, "/mj/submit/change", {"taskId": niji, "action": "UPSCALE", "index": 1})
    mj_wait(client, up)
    assert stored(live, up).engine_model == "tiny-z-image"


def test_what_the_routed_model_cannot_do_is_refused_before_any_charge(
    two_models: tuple[LiveServer, httpx.Client], images: ImageServer
) -> None:
    _live, client = two_models
    style = images.url("/style.png")
    before = balance(client)
    r = client.post("/mj/submit/imagine", json={"prompt": f"a cat --sref {style}", "botType": "NIJI_JOURNEY"})
    assert r.status_code == 400 or r.json()["code"] != 1, r.text
    assert "tiny-z-image" in r.json()["description"] and "--sref" in r.json()["description"]
    assert balance(client) == before
    ok = mj_submit(client, "/mj/submit/imagine", {"prompt": f"a cat --sref {style}"})  # klein takes it
    assert mj_wait(client, ok)["status"] == "SUCCESS"
    assert Operation.IMAGINE in IMAGE
