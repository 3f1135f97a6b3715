"""Issue 5: images in — image prompts, --sref/--oref, vary region, editor, upload-paint, retexture,
remove background, and the network rules, over real HTTP with images served on loopback.

What the model does with the images runs on the tiny model; images that fail before the model is
reached run on the fake engine (tests/fake_engine.py).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import run, submit
from tests.helpers import wait_task as wait
from tests.http_client import HTTP
from tests.images import ImageServer, bomb_png, pattern, png, square_on_black
from tests.live import LiveServer, make_settings

pytestmark = pytest.mark.timeout(600)
GEN = "/v1/images/generations"


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    srv = ImageServer()
    srv.add("/ref.png", png(pattern((300, 200), 1)))
    srv.add("/ref2.jpg", _jpeg(pattern((200, 300), 2)), "image/jpeg")
    srv.add("/style.webp", _webp(pattern((128, 128), 3)), "image/webp")
    srv.add("/person.png", png(pattern((256, 256), 4)))
    srv.add("/square.png", png(square_on_black()))
    srv.add("/photo.png", png(pattern((320, 320), 5)))
    srv.add("/notimage.png", b"hello, I am text", "image/png")
    srv.add("/bomb.png", bomb_png())
    srv.add("/huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024))
    yield srv
    srv.close()


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _webp(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "WEBP", lossless=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> httpx.Client:
    return server.client(server.create_key(credits=100_000))


@pytest.fixture(scope="module")
def fake_client(fake_server: LiveServer) -> httpx.Client:
    return fake_server.client(fake_server.create_key(credits=100_000))


def fetch(url: str) -> Image.Image:
    r = HTTP.get(url, timeout=30)
    assert r.status_code == 200
    return Image.open(io.BytesIO(r.content))


def all_bytes(done: dict[str, Any]) -> list[bytes]:
    return [HTTP.get(u).content for u in done["results"]]


# --------------------------------------------------------------------------- image prompts and references


@pytest.fixture(scope="module")
def plain(client: httpx.Client) -> list[bytes]:
    return all_bytes(run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5"}))


def test_image_prompt_changes_the_result(
    client: httpx.Client, images: ImageServer, plain: list[bytes]
) -> None:
    done = run(
        client, {"model": "mj-v7", "prompt": f"{images.url('/ref.png')} a castle on a hill --seed 5 --iw 2"}
    )
    assert len(done["results"]) == 4
    assert {fetch(u).size for u in done["results"]} == {(512, 512)}
    assert all_bytes(done) != plain
    assert "/ref.png" in images.requests


def test_two_images_without_text(client: httpx.Client, images: ImageServer) -> None:
    done = run(
        client, {"model": "mj-v7", "prompt": f"{images.url('/ref.png')} {images.url('/ref2.jpg')} --seed 2"}
    )
    assert len(done["results"]) == 4


def test_one_image_without_text_is_refused(client: httpx.Client, images: ImageServer) -> None:
    r = client.post(GEN, json={"model": "mj-v7", "prompt": images.url("/ref.png")})
    assert r.status_code == 400


def test_sref_url_and_codes(client: httpx.Client, images: ImageServer, plain: list[bytes]) -> None:
    by_url = run(
        client,
        {"model": "mj-v7", "prompt": f"a castle on a hill --seed 5 --sref {images.url('/style.webp')}"},
    )
    assert all_bytes(by_url) != plain
    code_a = all_bytes(
        run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5 --sref 1234 --sw 300"})
    )
    code_a2 = all_bytes(
        run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5 --sref 1234 --sw 300"})
    )
    code_b = all_bytes(
        run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5 --sref 98765 --sw 300"})
    )
    assert code_a == code_a2  # a style code is a fixed style
    assert code_a != code_b and code_a != plain
    rnd = run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5 --sref random"})
    assert len(rnd["results"]) == 4


def test_oref(client: httpx.Client, images: ImageServer, plain: list[bytes]) -> None:
    done = run(
        client,
        {
            "model": "mj-v7",
            "prompt": f"a castle on a hill --seed 5 --oref {images.url('/person.png')} --ow 200",
        },
    )
    assert all_bytes(done) != plain


def test_plain_imagine_is_unchanged_after_reference_jobs(client: httpx.Client, plain: list[bytes]) -> None:
    """The adapter is unloaded after a reference job: the same seed still gives the same bytes."""
    assert all_bytes(run(client, {"model": "mj-v7", "prompt": "a castle on a hill --seed 5"})) == plain


# --------------------------------------------------------------------------- vary region and the editor


@pytest.fixture(scope="module")
def grid(client: httpx.Client) -> dict[str, Any]:
    return run(client, {"model": "mj-v7", "prompt": "a quiet street --ar 3:2 --seed 8"})


def test_inpaint_leaves_the_unmasked_part_untouched(client: httpx.Client, grid: dict[str, Any]) -> None:
    # a rectangle in a 1000×1000 frame: x 300–600, y 200–700 of the 672×448 image
    area = {"width": 1000, "height": 1000, "points": [300, 200, 600, 200, 600, 700, 300, 700]}
    done = run(
        client,
        {
            "model": "mj-v7-inpaint",
            "prompt": "a red door",
            "model_params": {"task_id": grid["id"], "image_number": 1, "mask": {"areas": [area]}},
        },
    )
    src = np.asarray(fetch(grid["results"][1]).convert("RGB")).astype(int)
    assert len(done["results"]) == 4
    x0, x1, y0, y1 = int(0.3 * 672), int(0.6 * 672), int(0.2 * 448), int(0.7 * 448)
    for url in done["results"]:
        out = np.asarray(fetch(url).convert("RGB")).astype(int)
        assert out.shape == src.shape
        outside = np.ones(src.shape[:2], bool)
        outside[y0 - 1 : y1 + 2, x0 - 1 : x1 + 2] = False  # the polygon's own edge pixels may be anti-aliased
        assert (out[outside] == src[outside]).all()
        inside = out[y0 + 8 : y1 - 8, x0 + 8 : x1 - 8] != src[y0 + 8 : y1 - 8, x0 + 8 : x1 - 8]
        assert inside.mean() > 0.5  # the selection was repainted


def test_inpaint_with_a_mask_image(client: httpx.Client, grid: dict[str, Any], images: ImageServer) -> None:
    mask = Image.new("L", (672, 448), 0)
    mask.paste(255, (0, 0, 200, 448))  # left strip white = repaint
    url = images.add("/mask.png", png(mask))
    done = run(
        client,
        {
            "model": "mj-v7-inpaint",
            "model_params": {"task_id": grid["id"], "image_number": 0, "mask": {"url": url}},
        },
    )
    src = np.asarray(fetch(grid["results"][0]).convert("RGB"))
    out = np.asarray(fetch(done["results"][0]).convert("RGB"))
    assert (out[:, 204:] == src[:, 204:]).all()
    assert (out[:, :196] != src[:, :196]).any()


def test_upload_paint_on_a_2_to_1_canvas_keeps_the_placed_image(
    client: httpx.Client, images: ImageServer
) -> None:
    params = {
        "canvas": {"width": 768, "height": 384},
        "img_pos": {"width": 256, "height": 256, "x": 256, "y": 64},
        "mask": {"areas": [{"width": 768, "height": 384, "points": [0, 0, 200, 0, 200, 384, 0, 384]}]},
    }
    done = run(
        client,
        {
            "model": "mj-v7-upload-paint",
            "prompt": "a sunny beach around it",
            "image_urls": [images.url("/photo.png")],
            "model_params": params,
        },
    )
    placed = pattern((320, 320), 5).resize((256, 256), Image.Resampling.LANCZOS)
    for url in done["results"]:
        out = fetch(url).convert("RGB")
        assert out.size == (768, 384)
        assert out.crop((256, 64, 512, 320)).tobytes() == placed.tobytes()
        # outside the placed image the canvas was painted (not grey, not a copy of an edge only)
        assert np.asarray(out.crop((0, 0, 256, 384))).std() > 1


def test_edit_moves_a_result_on_a_bigger_canvas(client: httpx.Client, grid: dict[str, Any]) -> None:
    params = {
        "task_id": grid["id"],
        "image_number": 2,
        "canvas": {"width": 672, "height": 560},
        "img_pos": {"width": 336, "height": 224, "x": 0, "y": 0},
    }
    done = run(client, {"model": "mj-v7-edit", "prompt": "a quiet street, wider", "model_params": params})
    src = fetch(grid["results"][2]).convert("RGB").resize((336, 224), Image.Resampling.LANCZOS)
    out = fetch(done["results"][0]).convert("RGB")
    assert out.size == (672, 560)
    assert out.crop((0, 0, 336, 224)).tobytes() == src.tobytes()


def test_retexture(client: httpx.Client, images: ImageServer) -> None:
    done = run(
        client,
        {"model": "mj-v7-retexture", "prompt": "made of wood", "image_urls": [images.url("/photo.png")]},
    )
    assert len(done["results"]) == 4
    assert {fetch(u).size for u in done["results"]} == {(320, 320)}


def test_remove_background_gives_real_transparency(client: httpx.Client, images: ImageServer) -> None:
    done = run(client, {"model": "mj-v7-remove-bg", "image_urls": [images.url("/square.png")]})
    assert len(done["results"]) == 1
    out = fetch(done["results"][0])
    assert out.mode == "RGBA" and out.size == (256, 256)
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[100:150, 100:150].min() > 240  # the white square stays
    assert alpha[:40, :40].max() < 15  # the black background is transparent


# --------------------------------------------------------------------------- bad images fail cleanly


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/missing.png", "404"),
        ("/notimage.png", "not a png"),
        ("/bomb.png", "pixel"),
        ("/huge.png", "large"),
    ],
)
def test_bad_images_fail_the_task_and_refund(
    fake_client: httpx.Client, images: ImageServer, path: str, words: str
) -> None:
    client = fake_client
    before = client.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
    task = submit(client, {"model": "mj-v7", "prompt": f"{images.url(path)} a cat --seed 1"})
    done = wait(client, task["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "image_processing_error"
    assert words.lower() in done["error"]["message"].lower(), done["error"]
    after = client.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
    assert after == before  # refunded


# --------------------------------------------------------------------------- network rules


BLOCKED = ["127.0.0.1", "localhost", "10.0.0.1", "169.254.169.254", "[::1]", "2130706433"]


@pytest.mark.parametrize("host", BLOCKED)
def test_private_image_urls_are_never_fetched(api_server: LiveServer, images: ImageServer, host: str) -> None:
    client = api_server.client(api_server.create_key(credits=100))
    before = list(images.requests)
    port = images.port
    url = f"http://{host}:{port}/ref.png"
    for body in (
        {"model": "mj-v7", "prompt": f"{url} a cat"},
        {"model": "mj-v7", "prompt": f"a cat --sref {url}"},
        {"model": "mj-v7", "prompt": f"a cat --oref {url}"},
        {"model": "mj-v7-remove-bg", "image_urls": [url]},
        {"model": "mj-v7-retexture", "prompt": "wood", "image_urls": [url]},
    ):
        r = client.post(GEN, json=body)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"error"}
    assert client.get("/v1/tasks").json()["total"] == 0
    # a submit answers after any fetch it makes, and this server has no worker to fetch later
    assert images.requests == before


# --------------------------------------------------------------------------- a model without an adapter


@pytest.fixture(scope="module")
def bare_model(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("bare") / "plain-sd"
    shutil.copytree(tiny_dir, target, ignore=shutil.ignore_patterns("ip_adapter", "controlnet"))
    return target


@pytest.fixture(scope="module")
def bare_server(bare_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import resolve_preset

    preset = resolve_preset(str(bare_model))
    assert preset.ip_adapter is None
    engine = LocalEngine(preset, tmp_path_factory.mktemp("m"), device="cpu")
    engine.load()
    settings = make_settings(tmp_path_factory.mktemp("bare-data"), model=str(bare_model))
    with LiveServer(settings, engine) as live:
        yield live


def test_model_without_adapter_refuses_references_by_name(
    bare_server: LiveServer, images: ImageServer
) -> None:
    client = bare_server.client(bare_server.create_key(credits=1000))
    for prompt in (
        f"a cat --sref {images.url('/style.webp')}",
        "a cat --sref 42",
        f"a cat --oref {images.url('/p.png')}",
    ):
        r = client.post(GEN, json={"model": "mj-v7", "prompt": prompt})
        assert r.status_code == 400
        assert "plain-sd" in r.json()["error"]["message"]
    # image prompts still work: they become the img2img start
    done = run(client, {"model": "mj-v7", "prompt": f"{images.url('/ref.png')} a cat --seed 3"})
    assert len(done["results"]) == 4
    # retexture falls back to plain img2img without a ControlNet
    done = run(
        client, {"model": "mj-v7-retexture", "prompt": "stone", "image_urls": [images.url("/photo.png")]}
    )
    assert len(done["results"]) == 4
