"""Issue 7: outputs flagged by the image classifier are removed; none left → failed, not refunded.

The worker runs the fake engine (tests/fake_engine.py): its remove-bg hands back the upload, so
what NudeNet sees is the picture served here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fake_engine import FakeEngine
from tests.helpers import wait_task
from tests.images import ImageServer, drawing, png
from tests.live import LiveServer, make_settings

pytestmark = pytest.mark.timeout(300)
pytest.importorskip("nudenet")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENMJ_IMAGE_MODERATION", "nudenet")
    try:
        with LiveServer(make_settings(tmp_path_factory.mktemp("imgmod")), FakeEngine()) as live:
            yield live
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    s = ImageServer()
    s.add("/flagged.png", png(drawing()))
    s.add("/clean.png", png(Image.new("RGB", (256, 256), (20, 40, 200))))
    yield s
    s.close()


def run(c: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    task = c.post("/v1/images/generations", json=body).json()
    return wait_task(c, task["id"], 120)


def test_flagged_output_fails_the_task_without_refund(srv: LiveServer, images: ImageServer) -> None:
    c = srv.client(srv.create_key(credits=100))
    done = run(c, {"model": "mj-v7-remove-bg", "image_urls": [images.url("/flagged.png")]})
    assert done["status"] == "failed"
    assert done["error"]["code"] == "content_policy_violation"
    balance = c.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
    assert balance == 100 - done["usage"]["credits_reserved"]  # seed 000: moderated outputs are not refunded


def test_clean_output_passes(srv: LiveServer, images: ImageServer) -> None:
    c = srv.client(srv.create_key(credits=100))
    done = run(c, {"model": "mj-v7-remove-bg", "image_urls": [images.url("/clean.png")]})
    assert done["status"] == "completed" and len(done["results"]) == 1
    grid = run(c, {"model": "mj-v7", "prompt": "noise --seed 1"})
    assert grid["status"] == "completed" and len(grid["results"]) == 4
