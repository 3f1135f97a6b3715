"""The fake engine (tests/fake_engine.py) against the real one: the same sizes, counts and seeds for
every operation, and the same obedience to JobControl. Also the real engine's own stop at a step."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openmj.core.tasks import Operation, Speed, Task, TaskRequest
from openmj.engines.base import EngineJob, EngineResult, JobControl, JobStopped
from openmj.inputs import InputResolver
from openmj.net import NetPolicy
from tests.fake_engine import FakeEngine
from tests.helpers import create, image, run, stored, submit, wait_task
from tests.http_client import HTTP
from tests.images import ImageServer, pattern, png
from tests.live import LiveServer, wait_until

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def key(fake_server: LiveServer) -> str:
    return fake_server.create_key(credits=100_000)


@pytest.fixture(scope="module")
def client(fake_server: LiveServer, key: str) -> httpx.Client:
    return fake_server.client(key)


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    srv = ImageServer()
    srv.add("/photo.png", png(pattern((320, 200), 5)))
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def draft(client: httpx.Client) -> dict[str, Any]:
    """A 3:2 draft grid (336×224 on the 512-native model): small, so the real engine is quick too."""
    return run(
        client,
        {"model": "mj-v7", "prompt": "a harbour --ar 3:2 --seed 1", "model_params": {"speed": "draft"}},
    )


def job_of(live: LiveServer, task_id: str) -> EngineJob:
    """The engine's input for a stored task, resolved the way the worker resolves it."""
    resolve = InputResolver(live.runtime.media, NetPolicy(allow_private=True))
    return live.call(resolve(stored(live, task_id)))  # type: ignore[no-any-return]


def shape(result: EngineResult) -> list[tuple[tuple[int, int], str, int | None]]:
    return [(im.size, im.mode, seed) for im, seed in zip(result.images, result.seeds, strict=True)]


def instant() -> FakeEngine:
    return FakeEngine(steps=1, step_seconds=0)


# --------------------------------------------------------------------------- no model needed


def test_the_fake_engine_needs_no_torch() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'diffusers', 'transformers'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tests.fake_engine\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_sizes_of_a_grid_and_its_actions(fake_server: LiveServer, client: httpx.Client) -> None:
    grid = run(client, {"model": "mj-v7", "prompt": "a quiet street --ar 3:2 --seed 8"})
    assert {image(u).size for u in grid["results"]} == {(672, 448)}  # V7 1344×896, halved
    assert [d["seed"] for d in grid["result_data"]] == [8, 9, 10, 11]
    params = {"task_id": grid["id"], "image_number": 0}
    up = run(client, {"model": "mj-v7-upscale", "model_params": params})
    assert [image(u).size for u in up["results"]] == [(1344, 896)]
    pan = run(client, {"model": "mj-v7-pan", "model_params": {**params, "direction": "up", "scale": 1.25}})
    assert {image(u).size for u in pan["results"]} == {(672, 560)}
    # outpainting keeps the source's pixels, as the real engine does
    assert image(pan["results"][0]).crop((0, 112, 672, 560)).tobytes() == image(grid["results"][0]).tobytes()


def test_same_seed_same_pictures_and_each_seed_its_own(fake_server: LiveServer, client: httpx.Client) -> None:
    first = run(client, {"model": "mj-v7", "prompt": "a red fox --seed 7"})
    again = run(client, {"model": "mj-v7", "prompt": "a red fox --seed 7"})
    pictures = [HTTP.get(u).content for u in first["results"]]
    assert pictures == [HTTP.get(u).content for u in again["results"]]
    assert len(set(pictures)) == 4


def test_progress_then_cancel_between_steps(fake_server: LiveServer, client: httpx.Client) -> None:
    engine = FakeEngine(steps=1000, step_seconds=0.01)
    job = job_of(fake_server, create(client, "a slow one --seed 2")["id"])
    control = JobControl()
    raised: list[BaseException] = []

    def work() -> None:
        try:
            engine.run(job, control)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    wait_until(lambda: control.progress >= 5, 60, 0.01, "progress")
    control.cancel()
    thread.join(60)
    assert len(raised) == 1 and isinstance(raised[0], JobStopped) and raised[0].reason == "cancelled"
    run_ = engine.run_for(job.task.id)
    assert run_.outcome == "cancelled" and 50 <= run_.done < run_.steps  # stopped at a step, not the end


@pytest.mark.parametrize("reason", ["timeout", "shutdown", "cancelled"])
def test_a_stopped_control_ends_the_job_before_any_step(
    fake_server: LiveServer, client: httpx.Client, reason: str
) -> None:
    job = job_of(fake_server, create(client, "a cat --seed 3")["id"])
    control = JobControl(deadline=0.0 if reason == "timeout" else None)
    if reason == "shutdown":
        control.shutdown()
    elif reason == "cancelled":
        control.cancel()
    engine = instant()
    with pytest.raises(JobStopped) as stopped:
        engine.run(job, control)
    assert stopped.value.reason == reason
    assert engine.run_for(job.task.id).done == 0


# --------------------------------------------------------------------------- the same as the real engine


def requests(grid: dict[str, Any], photo: str) -> list[dict[str, Any]]:
    on = {"task_id": grid["id"], "image_number": 1}
    mask = {"areas": [{"width": 100, "height": 100, "points": [10, 10, 60, 10, 60, 70, 10, 70]}]}
    canvas = {
        "canvas": {"width": 500, "height": 300},
        "img_pos": {"width": 336, "height": 224, "x": 0, "y": 40},
    }
    return [
        {"model": "mj-v7-upscale", "model_params": on},
        {"model": "mj-v7-upscale", "model_params": {**on, "type": "creative"}},
        {"model": "mj-v7-variation", "model_params": {**on, "type": "strong"}},
        {"model": "mj-v7-remix", "prompt": "at night", "model_params": on},
        {"model": "mj-v7-outpaint", "model_params": {**on, "scale": 1.5}},
        {"model": "mj-v7-pan", "model_params": {**on, "direction": "left", "scale": 1.5}},
        {"model": "mj-v7-enhance", "model_params": on},
        {"model": "mj-v7-inpaint", "prompt": "a door", "model_params": {**on, "mask": mask}},
        {"model": "mj-v7-edit", "prompt": "wider", "model_params": {**on, **canvas}},
        {
            "model": "mj-v7-upload-paint",
            "prompt": "a beach",
            "image_urls": [photo],
            "model_params": {**canvas, "mask": mask},
        },
        {"model": "mj-v7-retexture", "prompt": "wood", "image_urls": [photo]},
        {"model": "mj-v7-remove-bg", "image_urls": [photo]},
        {
            "model": "mj-v7",
            "prompt": f"{photo} a cat --ar 2:3 --seed 4 --sref 12",
            "model_params": {"speed": "draft"},
        },
    ]


def make_square(live: LiveServer, key: str, grid: dict[str, Any]) -> str:
    """No EvoLink model names Make Square; the core runs it (midjourney-proxy exposes it)."""
    service = live.runtime.service
    api_key = live.call(service.authenticate(key))
    req = TaskRequest(
        operation=Operation.MAKE_SQUARE,
        model="mj-v7",
        dialect="evolink",
        parent_id=grid["id"],
        parent_index=2,
        speed=Speed.FAST,
    )
    return live.call(service.submit(api_key, req)).id  # type: ignore[no-any-return]


@pytest.mark.slow
def test_every_operation_has_the_real_engines_sizes_and_seeds(
    fake_server: LiveServer,
    key: str,
    client: httpx.Client,
    draft: dict[str, Any],
    images: ImageServer,
    tiny_engine: Any,
) -> None:
    ids = [submit(client, body)["id"] for body in requests(draft, images.url("/photo.png"))]
    ids.append(make_square(fake_server, key, draft))
    operations = set()
    for task_id in ids:
        done = wait_task(client, task_id)
        assert done["status"] == "completed", done
        task: Task = stored(fake_server, task_id)
        operations.add(task.operation)
        job = job_of(fake_server, task_id)
        fake, real = instant().run(job, JobControl()), tiny_engine.run(job, JobControl())
        assert shape(fake) == shape(real), task.operation
    # Reroll and Blend are the imagine runner in both engines (plan sizes, as the grid above); the
    # fake's clips have the planned frame size but not the video model's length (a relay upstream's)
    assert operations == set(FakeEngine().operations) - {
        Operation.REROLL,
        Operation.BLEND,
        Operation.VIDEO,
        Operation.VIDEO_EXTEND,
        Operation.VIDEO_UPSCALE,
        Operation.DESCRIBE,  # words, not pictures (tests/test_words.py has the real captioner)
        Operation.SHORTEN,  # words: a relay upstream's (tests/test_words.py has the real encoder)
    }


@pytest.mark.slow
def test_the_real_engine_stops_at_the_next_step_when_cancelled(
    fake_server: LiveServer, client: httpx.Client, tiny_engine: Any
) -> None:
    job = job_of(fake_server, create(client, "a long one --ar 16:9 --q 4 --seed 3")["id"])
    control = JobControl()
    raised: list[BaseException] = []

    def work() -> None:
        try:
            tiny_engine.run(job, control)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    wait_until(lambda: control.progress >= 10, 120, 0.005, "the first sampler step")
    control.cancel()
    thread.join(120)
    assert len(raised) == 1 and isinstance(raised[0], JobStopped) and raised[0].reason == "cancelled"
    assert control.progress < 99  # 8 sampler steps: it stopped at one of them, not after the last
