"""Video (issue 13) as a user sees it, on the real tiny Wan image-to-video pipeline: kie mj_video,
mj_video_hd and generateVideoExtend, midjourney-proxy /mj/submit/video and the Animate button,
MP4 files that decode to the stored frames, fps and size, prices, and bad input refused."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from openmj.core.video import video_size
from openmj.engines.base import EngineJob, JobControl, JobStopped
from tests.helpers import balance, task_count
from tests.http_client import HTTP
from tests.images import ImageServer, png
from tests.live import LiveServer, make_settings, wait_until
from tests.loopback import Receiver

GEN = "/api/v1/mj/generate"
INFO = "/api/v1/mj/record-info"
EXTEND = "/api/v1/mj/generateVideoExtend"
TINY_FPS = 8.0  # the tiny-video preset
CLIP_FRAMES = 41  # 5 s at 8 fps, + the first frame
EXTEND_FRAMES = 32  # 4 s at 8 fps
SD_CLIP, HD_CLIP = 16.0, 52.0  # the default price table, per clip


def start_picture(size: tuple[int, int]) -> Image.Image:
    """A horizontal red→blue gradient with a white bar: structure a frame comparison can see."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)
    rgb = np.stack([255 - x, np.full_like(x, 60), x], axis=-1)
    arr = np.repeat(rgb[None, :, :], h, axis=0).astype(np.uint8)
    arr[h // 3 : h // 3 + h // 8, :, :] = 255
    return Image.fromarray(arr)


def distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference, 0–255."""
    b = b.resize(a.size)
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())


def clip(url: str, tmp: Path) -> dict[str, Any]:
    """Download a result link without any key, as a browser would, and decode it."""
    r = HTTP.get(url, timeout=60)
    assert r.status_code == 200, (url, r.status_code)
    assert r.headers["content-type"] == "video/mp4"
    data = r.content
    assert data[4:8] == b"ftyp" and 0 < data.find(b"moov") < data.find(b"mdat")  # moov first: faststart
    path = tmp / f"{abs(hash(url))}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_image() for f in container.decode(stream)]
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "fps": float(stream.average_rate),
            "frames": frames,
            "size": frames[0].size,
        }


@pytest.fixture(scope="module")
def video_server(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, tiny_dir: Path
) -> Iterator[LiveServer]:
    """A server whose worker has the tiny image model and the tiny video model."""
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import PRESETS, VIDEO_PRESETS

    engine = LocalEngine(PRESETS["tiny"], models_dir, device="cpu", video=VIDEO_PRESETS["tiny-video"])
    settings = make_settings(tmp_path_factory.mktemp("data-video"), video_model="tiny-video")
    with LiveServer(settings, engine) as live:
        yield live


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.add("/start.png", png(start_picture((600, 400))))
    server.add("/square.png", png(start_picture((500, 500))))
    server.add("/page.html", b"<html>not an image</html>", "text/html")
    yield server
    server.close()


@pytest.fixture(scope="module")
def kie(video_server: LiveServer) -> Iterator[httpx.Client]:
    with video_server.client(video_server.create_key(credits=2000)) as client:
        yield client


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200, body
    return body["data"]  # type: ignore[no-any-return]


def record(client: httpx.Client, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = ok(client.get(INFO, params={"taskId": task_id}))
        return data if data["successFlag"] != 0 else None

    return wait_until(done, timeout=600, interval=0.2, what=f"task {task_id}")


@pytest.fixture(scope="module")
def sd_video(kie: httpx.Client, images: ImageServer) -> dict[str, Any]:
    """The issue's first must-show: mj_video, one image URL, motion low, videoBatchSize 2."""
    before = balance(kie)
    body = {
        "taskType": "mj_video",
        "prompt": "waves rolling in",
        "fileUrls": [images.url("/start.png")],
        "motion": "low",
        "videoBatchSize": 2,
    }
    task_id = ok(kie.post(GEN, json=body))["taskId"]
    return {"id": task_id, "before": before, "record": record(kie, task_id)}


def test_mj_video_gives_two_playable_clips(
    sd_video: dict[str, Any], kie: httpx.Client, tmp_path: Path
) -> None:
    data = sd_video["record"]
    assert data["successFlag"] == 1 and data["taskType"] == "mj_video", data
    urls = [u["resultUrl"] for u in data["resultInfoJson"]["resultUrls"]]
    assert [u.split("?")[0].rsplit("/", 1)[1] for u in urls] == ["0.mp4", "1.mp4"]
    expected = video_size(600, 400, "sd")
    assert expected == (768, 512)  # Midjourney's 3:2 SD size
    start = start_picture((600, 400)).resize(expected)
    for url in urls:
        c = clip(url, tmp_path)
        assert c["codec"] == "h264" and c["pix_fmt"] == "yuv420p"
        assert c["fps"] == TINY_FPS and len(c["frames"]) == CLIP_FRAMES and c["size"] == expected
        assert distance(c["frames"][0], start) < 12  # the clip starts on the given image
    assert sd_video["before"] - balance(kie) == 2 * SD_CLIP


def test_the_stored_clip_is_what_the_file_holds(sd_video: dict[str, Any], video_server: LiveServer) -> None:
    from tests.helpers import stored

    task = stored(video_server, sd_video["id"])
    assert [(r.frames, r.fps, r.width, r.height) for r in task.results] == [
        (CLIP_FRAMES, TINY_FPS, 768, 512)
    ] * 2
    assert all(r.seconds == pytest.approx(5.125) and r.thumbnail for r in task.results)
    assert task.credits_charged == 2 * SD_CLIP


def test_extend_continues_the_clip(sd_video: dict[str, Any], kie: httpx.Client, tmp_path: Path) -> None:
    source_url = sd_video["record"]["resultInfoJson"]["resultUrls"][0]["resultUrl"]
    before = balance(kie)
    body = {"taskId": sd_video["id"], "index": 0, "taskType": "mj_video_extend_auto"}
    extend_id = ok(kie.post(EXTEND, json=body))["taskId"]
    data = record(kie, extend_id)
    assert data["successFlag"] == 1, data
    [url] = [u["resultUrl"] for u in data["resultInfoJson"]["resultUrls"]]
    longer, source = clip(url, tmp_path), clip(source_url, tmp_path)
    assert len(longer["frames"]) == CLIP_FRAMES + EXTEND_FRAMES and longer["fps"] == TINY_FPS
    assert longer["size"] == source["size"]
    # the first frames are the source clip's (each was re-encoded once more)
    for i in (0, 10, CLIP_FRAMES - 1):
        assert distance(longer["frames"][i], source["frames"][i]) < 6, i
    assert before - balance(kie) == SD_CLIP
    # the same task through EvoLink's task API: a video task, listed with the key's videos
    assert kie.get(f"/v1/tasks/{extend_id}").json()["type"] == "video"
    videos = {t["id"] for t in kie.get("/v1/tasks", params={"type": "video"}).json()["data"]}
    assert {sd_video["id"], extend_id} <= videos


def test_manual_extend_needs_a_prompt(sd_video: dict[str, Any], kie: httpx.Client) -> None:
    before = balance(kie), task_count(kie)
    body = {"taskId": sd_video["id"], "index": 0, "taskType": "mj_video_extend_manual"}
    r = kie.post(EXTEND, json=body)
    assert r.json()["code"] == 422 and "prompt" in r.json()["msg"]
    assert (balance(kie), task_count(kie)) == before


def test_mj_video_hd_is_720p_class(kie: httpx.Client, images: ImageServer, tmp_path: Path) -> None:
    before = balance(kie)
    body = {"taskType": "mj_video_hd", "prompt": "", "fileUrl": images.url("/square.png"), "motion": "high"}
    data = record(kie, ok(kie.post(GEN, json=body))["taskId"])
    assert data["successFlag"] == 1 and data["taskType"] == "mj_video_hd"
    [url] = [u["resultUrl"] for u in data["resultInfoJson"]["resultUrls"]]  # kie's default batch is 1
    c = clip(url, tmp_path)
    assert c["size"] == (960, 960) and len(c["frames"]) == CLIP_FRAMES
    assert before - balance(kie) == HD_CLIP


# --------------------------------------------------------------------------- midjourney-proxy


@pytest.fixture(scope="module")
def mj(video_server: LiveServer) -> Iterator[httpx.Client]:
    secret = video_server.create_key(credits=2000)
    headers = {"mj-api-secret": secret, "Authorization": f"Bearer {secret}"}  # the latter for /v1/credits
    with httpx.Client(base_url=video_server.url, headers=headers, timeout=30) as client:
        yield client


def mj_submit(client: httpx.Client, path: str, body: dict[str, Any], code: int = 1) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["code"] == code, out
    return out  # type: ignore[no-any-return]


def mj_wait(client: httpx.Client, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        t = client.get(f"/mj/task/{task_id}/fetch").json()
        return t if t["status"] in ("SUCCESS", "FAILURE") else None

    return wait_until(done, timeout=600, interval=0.2, what=f"task {task_id}")


def test_submit_video_loop(mj: httpx.Client, images: ImageServer, tmp_path: Path) -> None:
    body = {"prompt": "slow zoom", "image": images.url("/start.png"), "loop": True, "batchSize": 1}
    t = mj_wait(mj, mj_submit(mj, "/mj/submit/video", body)["result"])
    assert t["status"] == "SUCCESS" and t["action"] == "VIDEO" and t["progress"] == "100%", t
    assert len(t["videoUrls"]) == 1 and t["videoUrl"] == t["videoUrls"][0]["url"]
    thumb = HTTP.get(t["videoUrls"][0]["thumbnail"], timeout=30)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    poster = Image.open(io.BytesIO(thumb.content))
    assert max(poster.size) <= 640 and t["imageUrl"] == t["videoUrls"][0]["thumbnail"]
    c = clip(t["videoUrl"], tmp_path)
    assert c["size"] == (768, 512) and (t["width"], t["height"]) == (768, 512)
    first, last, middle = c["frames"][0], c["frames"][-1], c["frames"][len(c["frames"]) // 2]
    assert distance(first, last) < 6  # a loop ends where it starts
    assert distance(first, middle) > 20  # and moves in between (random weights: a lot)
    labels = [b["label"] for b in t["buttons"]]
    assert labels == ["Extend (High) 1", "Extend (Low) 1", "Upscale 1"]
    part = HTTP.get(t["videoUrl"], headers={"Range": "bytes=0-99"}, timeout=30)  # a player seeking
    assert part.status_code == 206 and len(part.content) == 100

    before = balance(mj)
    upscale = {"taskId": t["id"], "customId": t["buttons"][2]["customId"]}
    up = mj_wait(mj, mj_submit(mj, "/mj/submit/action", upscale)["result"])
    assert up["status"] == "SUCCESS" and up["action"] == "UPSCALE" and up["parentId"] == t["id"], up
    big = clip(up["videoUrl"], tmp_path)
    assert big["size"] == (1168, 784) and len(big["frames"]) == len(c["frames"]) and big["fps"] == TINY_FPS
    assert distance(big["frames"][5].resize(c["size"]), c["frames"][5]) < 6  # the same frames, resampled
    assert [b["label"] for b in up["buttons"]] == ["Extend (High) 1", "Extend (Low) 1"]  # HD: no upscale
    assert before - balance(mj) == 8


def test_imagine_animate_button_makes_a_video(mj: httpx.Client, tmp_path: Path) -> None:
    grid = mj_wait(mj, mj_submit(mj, "/mj/submit/imagine", {"prompt": "a lighthouse --ar 3:2"})["result"])
    assert grid["status"] == "SUCCESS" and not any("Animate" in b["label"] for b in grid["buttons"])
    u1 = next(b for b in grid["buttons"] if b["label"] == "U1")
    single = mj_wait(
        mj, mj_submit(mj, "/mj/submit/action", {"taskId": grid["id"], "customId": u1["customId"]})["result"]
    )
    animate = [b for b in single["buttons"] if b["label"].startswith("Animate")]
    assert [b["label"] for b in animate] == ["Animate (High motion)", "Animate (Low motion)"]
    body = {"taskId": single["id"], "customId": animate[1]["customId"]}
    t = mj_wait(mj, mj_submit(mj, "/mj/submit/action", body)["result"])
    assert t["status"] == "SUCCESS" and t["action"] == "VIDEO" and t["parentId"] == single["id"], t
    assert len(t["videoUrls"]) == 4  # Midjourney's default batch
    c = clip(t["videoUrls"][2]["url"], tmp_path)
    assert (
        c["size"] == video_size(single["width"], single["height"], "sd") and len(c["frames"]) == CLIP_FRAMES
    )


def test_imagine_with_video_flag(mj: httpx.Client, images: ImageServer) -> None:
    prompt = f"{images.url('/square.png')} leaves falling --video --motion high --bs 1"
    t = mj_wait(mj, mj_submit(mj, "/mj/submit/imagine", {"prompt": prompt})["result"])
    assert t["status"] == "SUCCESS" and t["action"] == "VIDEO" and len(t["videoUrls"]) == 1, t
    assert (t["width"], t["height"]) == (624, 624)


# --------------------------------------------------------------------------- bad input: nothing made


def test_bad_kie_video_leaves_nothing(
    kie: httpx.Client, images: ImageServer, sd_video: dict[str, Any]
) -> None:
    start, image_task = images.url("/start.png"), _image_task(kie)
    bad = [
        (
            {"taskType": "mj_video", "prompt": "x", "fileUrls": [start, images.url("/square.png")]},
            422,
            "exactly one",
        ),
        ({"taskType": "mj_video", "prompt": "x"}, 422, "exactly one"),
        ({"taskType": "mj_video", "prompt": "x", "fileUrls": [images.url("/missing.png")]}, 422, "missing"),
        ({"taskType": "mj_video", "prompt": "x", "fileUrls": [images.url("/page.html")]}, 422, "page.html"),
        ({"taskType": "mj_video", "prompt": "x", "fileUrl": start, "motion": "medium"}, 422, "motion"),
        ({"taskType": "mj_video", "prompt": "x", "fileUrl": start, "videoBatchSize": 3}, 422, "batch"),
        (
            {"taskType": "mj_video", "prompt": "x --loop --end https://a.com/e.png", "fileUrl": start},
            422,
            "--loop",
        ),
        ({"taskType": "mj_video", "prompt": "x --ar 16:9", "fileUrl": start}, 422, "--video"),
    ]
    before = balance(kie), task_count(kie)
    for body, code, words in bad:
        r = kie.post(GEN, json=body)
        assert r.status_code == 200 and r.json()["code"] == code, (body, r.text)
        assert words in r.json()["msg"], (body, r.json()["msg"])
    extend_image = {"taskId": image_task, "index": 0, "taskType": "mj_video_extend_auto"}
    r = kie.post(EXTEND, json=extend_image)
    assert r.json()["code"] == 422 and "not a video" in r.json()["msg"]
    r = kie.post(EXTEND, json={"taskId": sd_video["id"], "index": 2, "taskType": "mj_video_extend_auto"})
    assert r.json()["code"] == 422 and "index" in r.json()["msg"]  # the job has clips 0 and 1
    assert (balance(kie), task_count(kie)) == before


def _image_task(client: httpx.Client) -> str:
    task_id = ok(client.post(GEN, json={"taskType": "mj_txt2img", "prompt": "a tree"}))["taskId"]
    record(client, task_id)
    return task_id


def test_bad_mjproxy_video_leaves_nothing(mj: httpx.Client, images: ImageServer) -> None:
    start = images.url("/start.png")
    bad = [
        {"prompt": "x"},  # no start image
        {"prompt": "x", "image": start, "loop": True, "endImage": images.url("/square.png")},
        {"prompt": "x", "image": start, "motion": "medium"},
        {"prompt": "x", "image": start, "batchSize": 3},
        {"prompt": "x", "image": start, "videoType": "vid_1.1_i2v_1080"},
        {"prompt": "x", "image": images.url("/missing.png")},
        {"prompt": "x", "action": "extend", "index": 0},  # no taskId
    ]
    before = balance(mj), task_count(mj)
    for body in bad:
        r = mj.post("/mj/submit/video", json=body)
        assert r.status_code == 200 and r.json()["code"] == 4, (body, r.text)
        assert r.json()["description"], body
    assert (balance(mj), task_count(mj)) == before


# --------------------------------------------------------------------------- stopping


class CancelAfter(JobControl):
    """Cancels itself when the sampler reports its first step: the next check must stop it."""

    def __init__(self) -> None:
        super().__init__()
        self.reports = 0

    def report(self, fraction: float) -> None:
        super().report(fraction)
        self.reports += 1
        self.cancel()


def test_a_cancelled_video_stops_at_the_next_step(video_server: LiveServer) -> None:
    from openmj.core.tasks import Operation, Speed, Status, Task

    engine = video_server.runtime.workers[0].engine
    spec: Any = {
        "prompt": {"text": "x"},
        "video": {
            "motion": "low",
            "batch": 1,
            "resolution": "sd",
            "width": 624,
            "height": 624,
            "seconds": 5.0,
        },
    }
    task = Task(
        id="task-unified-1-cancel", owner="k", dialect="kie", operation=Operation.VIDEO, model="midjourney",
        status=Status.PROCESSING, progress=0, prompt="x", spec=spec, request={}, speed=Speed.FAST, seed=3,
        created_at=0,
    )  # fmt: skip
    control = CancelAfter()
    with pytest.raises(JobStopped) as stopped:
        engine.run(EngineJob(task=task, images={"start": start_picture((300, 300))}), control)
    assert stopped.value.reason == "cancelled" and control.reports == 1  # of the preset's 2 steps


def test_callbacks_carry_the_clips(kie: httpx.Client, mj: httpx.Client, images: ImageServer) -> None:
    with Receiver() as receiver:
        body = {
            "taskType": "mj_video",
            "prompt": "smoke rising",
            "fileUrl": images.url("/square.png"),
            "callBackUrl": receiver.url("/kie"),
        }
        task_id = ok(kie.post(GEN, json=body))["taskId"]
        sent = json.loads(receiver.wait_for("/kie", 1, timeout=600)[0].body)
        assert sent["code"] == 200 and sent["data"]["taskId"] == task_id
        [url] = sent["data"]["resultUrls"]  # kie's callback: a plain list of links
        assert "/0.mp4?" in url and HTTP.get(url, timeout=30).headers["content-type"] == "video/mp4"

        hook = {"image": images.url("/square.png"), "batchSize": 1, "notifyHook": receiver.url("/mj")}
        mj_id = mj_submit(mj, "/mj/submit/video", hook)["result"]
        mj_wait(mj, mj_id)
        last = wait_until(
            lambda: next(
                (
                    b
                    for b in map(lambda h: json.loads(h.body), receiver.hits("/mj"))
                    if b["status"] == "SUCCESS"
                ),
                None,
            ),
            timeout=60,
        )
        assert last["id"] == mj_id and last["action"] == "VIDEO" and len(last["videoUrls"]) == 1
        assert last["videoUrls"][0]["thumbnail"] and last["videoUrl"] == last["videoUrls"][0]["url"]
