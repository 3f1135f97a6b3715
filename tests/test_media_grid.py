"""The 2×2 grid is written after the task is answered; a grid that is missing (the process died
first, or the request came before the write) is made from the four images: the same bytes."""

from __future__ import annotations

from PIL import Image

from tests.helpers import run
from tests.http_client import HTTP
from tests.live import LiveServer, wait_until


def test_a_missing_grid_is_made_again_from_the_four_images(fake_server: LiveServer) -> None:
    client = fake_server.client(fake_server.create_key(credits=1000))
    done = run(client, {"model": "mj-v7", "prompt": "a lighthouse --seed 7 --ar 3:2"})
    media = fake_server.runtime.media
    path = media.path(done["id"], "grid.png")
    wait_until(path.is_file, 30, 0.02, "the grid written after completion")
    first = HTTP.get(done["grid_url"])
    assert first.status_code == 200
    path.unlink()
    again = HTTP.get(done["grid_url"])
    assert again.status_code == 200 and again.content == first.content
    w, h = Image.open(path).size
    one = Image.open(media.path(done["id"], "0.png")).size
    assert (
        (w, h)
        == (2 * one[0], 2 * one[1])
        == (done["result_data"][0]["width"] * 2, done["result_data"][0]["height"] * 2)
    )


def test_no_grid_without_four_images(fake_server: LiveServer) -> None:
    client = fake_server.client(fake_server.create_key(credits=1000))
    grid = run(client, {"model": "mj-v7", "prompt": "a lighthouse --seed 8"})
    up = run(client, {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 1}})
    assert "grid_url" not in up
    signer = fake_server.app.state.ctx.signer
    url = signer.sign(
        f"/media/{up['id']}/grid.png", 4_000_000_000, fake_server.runtime.repo and grid["id"] and "x"
    )
    assert HTTP.get(url).status_code in (403, 404)
