"""Media on S3 (issue 18): OPENMJ_MEDIA_URL=s3://bucket/prefix against a real SeaweedFS server
started here. Results are objects in the bucket, the signed links stream them (Range: 206 and
exactly those bytes) from any API node or redirect to the store's presigned URL, and expiry and
retention delete them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from openmj.client import Client
from openmj.config import Settings
from openmj.media.backend import open_media
from openmj.media.s3 import S3MediaStore, parse_media_url
from tests.fake_engine import FakeEngine
from tests.helpers import run
from tests.http_client import HTTP
from tests.live import LiveServer, free_port, make_settings, wait_until
from tests.seaweed import SeaweedS3

BUCKET = "openmj-media"
DAY = 86400.0


@pytest.fixture(scope="module")
def s3(seaweed: SeaweedS3) -> SeaweedS3:
    """The session's SeaweedFS (tests/conftest.py) with this module's bucket."""
    seaweed.create_bucket(BUCKET)
    return seaweed


@pytest.fixture(scope="module")
def node_a(s3: SeaweedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("s3-node-a"), video_model="tiny-video", **s3.settings(BUCKET, "media")
    )
    with LiveServer(settings, FakeEngine()) as live:
        yield live


def api_node(first: LiveServer, data_dir: Path, s3: SeaweedS3, **extra: Any) -> LiveServer:
    """Another API node (no worker, its own data folder) on the first node's database and bucket."""
    settings = make_settings(
        data_dir,
        database_url=first.settings.resolved_database_url,
        run_worker=False,
        **s3.settings(BUCKET, "media"),
        **extra,
    )
    return LiveServer(settings, None)


def on(node: LiveServer, url: str) -> str:
    """The same link (path and signed query) on another node."""
    parts = urlsplit(url)
    return f"{node.url}{parts.path}?{parts.query}"


def imagine(node: LiveServer, prompt: str) -> dict[str, Any]:
    return run(node.client(node.create_key(credits=1000)), {"model": "mj-v7", "prompt": prompt})


def grid_written(s3: SeaweedS3, task_id: str) -> bool:
    return f"media/{task_id}/grid.png" in s3.keys(BUCKET, f"media/{task_id}/")


def test_an_imagine_is_objects_in_the_bucket_and_its_links_serve_them(
    node_a: LiveServer, s3: SeaweedS3
) -> None:
    done = imagine(node_a, "a lighthouse at dusk --seed 3")
    tid = done["id"]
    wait_until(lambda: grid_written(s3, tid), 30, 0.05, "the grid object")
    assert s3.keys(BUCKET, f"media/{tid}/") == [
        f"media/{tid}/{n}" for n in ("0.png", "1.png", "2.png", "3.png", "grid.png")
    ]
    assert not (node_a.settings.data_dir / "media" / tid).exists()  # nothing on the node's disk
    links = [item["image_url"] for item in done["result_data"]] + [done["grid_url"]]
    names = ["0.png", "1.png", "2.png", "3.png", "grid.png"]
    for link, name in zip(links, names, strict=True):
        obj = s3.client().get_object(Bucket=BUCKET, Key=f"media/{tid}/{name}")
        stored = obj["Body"].read()
        assert obj["ContentType"] == "image/png"
        r = HTTP.get(link)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        assert r.content == stored and stored[:8] == b"\x89PNG\r\n\x1a\n"
        assert int(r.headers["content-length"]) == len(stored)


def test_an_upscale_reads_its_source_image_from_the_bucket(node_a: LiveServer, s3: SeaweedS3) -> None:
    client = node_a.client(node_a.create_key(credits=1000))
    grid = run(client, {"model": "mj-v7", "prompt": "a fox --seed 4"})
    up = run(client, {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 2}})
    assert HTTP.get(up["result_data"][0]["image_url"]).content[:4] == b"\x89PNG"
    assert s3.keys(BUCKET, f"media/{up['id']}/") == [f"media/{up['id']}/0.png"]


def test_a_missing_grid_object_is_made_again_from_the_four_images(node_a: LiveServer, s3: SeaweedS3) -> None:
    done = imagine(node_a, "a harbour --seed 5")
    wait_until(lambda: grid_written(s3, done["id"]), 30, 0.05, "the grid object")
    first = HTTP.get(done["grid_url"]).content
    s3.client().delete_object(Bucket=BUCKET, Key=f"media/{done['id']}/grid.png")
    again = HTTP.get(done["grid_url"])
    assert again.status_code == 200 and again.content == first
    assert grid_written(s3, done["id"])


def test_a_bad_signature_is_403_and_reads_nothing(node_a: LiveServer, s3: SeaweedS3) -> None:
    done = imagine(node_a, "a windmill --seed 6")
    wait_until(lambda: grid_written(s3, done["id"]), 30, 0.05, "the grid object")
    s3.client().delete_object(Bucket=BUCKET, Key=f"media/{done['id']}/grid.png")
    forged = done["grid_url"].replace("sig=", "sig=0")
    r = HTTP.get(forged)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert not grid_written(s3, done["id"])  # the store was not touched: no grid made for a forger
    expired = done["result_data"][0]["image_url"].replace("exp=", "exp=1")
    assert HTTP.get(expired).status_code == 403


def test_a_range_request_gets_206_and_exactly_those_bytes(node_a: LiveServer, s3: SeaweedS3) -> None:
    done = imagine(node_a, "a desert road --seed 7")
    link = done["result_data"][1]["image_url"]
    whole = HTTP.get(link).content
    size = len(whole)
    r = HTTP.get(link, headers={"Range": "bytes=10-99"})
    assert r.status_code == 206
    assert r.content == whole[10:100]
    assert r.headers["content-range"] == f"bytes 10-99/{size}" and r.headers["content-length"] == "90"
    tail = HTTP.get(link, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == whole[-16:]
    rest = HTTP.get(link, headers={"Range": f"bytes={size - 5}-"})
    assert rest.status_code == 206 and rest.content == whole[-5:]
    beyond = HTTP.get(link, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    ignored = HTTP.get(link, headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert ignored.status_code == 200 and ignored.content == whole


def test_a_video_is_an_mp4_and_thumbnail_object_served_in_ranges(node_a: LiveServer, s3: SeaweedS3) -> None:
    key = node_a.create_key(credits=1000)
    with Client(key, node_a.url) as mj:
        grid = mj.wait(mj.imagine("waves on a beach --ar 3:2"), interval=0.1)
        done = mj.wait(mj.video(grid, 1), interval=0.1)
    assert done.completed
    keys = s3.keys(BUCKET, f"media/{done.id}/")
    assert f"media/{done.id}/0.mp4" in keys and f"media/{done.id}/0_thumb.webp" in keys
    heads = {
        name: s3.client().head_object(Bucket=BUCKET, Key=f"media/{done.id}/{name}")["ContentType"]
        for name in ("0.mp4", "0_thumb.webp")
    }
    assert heads == {"0.mp4": "video/mp4", "0_thumb.webp": "image/webp"}
    link = done.images[0].url
    whole = HTTP.get(link)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content[4:8] == b"ftyp" and whole.headers["accept-ranges"] == "bytes"
    part = HTTP.get(link, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == whole.content[100:1124]
    # an extend decodes its source clip from the bucket
    kie = node_a.client(key)
    body = {"taskId": done.id, "index": 0, "taskType": "mj_video_extend_auto"}
    r = kie.post("/api/v1/mj/generateVideoExtend", json=body)
    assert r.status_code == 200 and r.json()["code"] == 200, r.text
    extend_id = r.json()["data"]["taskId"]

    def extended() -> dict[str, Any] | None:
        data: dict[str, Any] = kie.get("/api/v1/mj/record-info", params={"taskId": extend_id}).json()["data"]
        return data if data["successFlag"] != 0 else None

    assert wait_until(extended, 60, 0.1, "the extend")["successFlag"] == 1
    assert f"media/{extend_id}/0.mp4" in s3.keys(BUCKET, f"media/{extend_id}/")


def test_a_second_api_node_serves_the_same_link(node_a: LiveServer, s3: SeaweedS3, tmp_path: Path) -> None:
    key = node_a.create_key(credits=1000)
    done = run(node_a.client(key), {"model": "mj-v7", "prompt": "a city at night --seed 8"})
    link = done["result_data"][0]["image_url"]
    original = HTTP.get(link).content
    with api_node(node_a, tmp_path / "b", s3) as node_b:
        r = HTTP.get(on(node_b, link))
        assert r.status_code == 200 and r.content == original
        ranged = HTTP.get(on(node_b, link), headers={"Range": "bytes=0-7"})
        assert ranged.status_code == 206 and ranged.content == b"\x89PNG\r\n\x1a\n"
        # node B renders the task with links of its own, to the same objects
        seen = node_b.client(key).get(f"/v1/tasks/{done['id']}").json()
        own = seen["result_data"][0]["image_url"]
        assert own.startswith(node_b.url) and HTTP.get(own).content == original


def test_the_presigned_option_redirects_to_the_store(
    node_a: LiveServer, s3: SeaweedS3, tmp_path: Path
) -> None:
    done = imagine(node_a, "a mountain lake --seed 9")
    link = done["result_data"][2]["image_url"]
    link_expiry = float(parse_qs(urlsplit(link).query)["exp"][0])
    with api_node(node_a, tmp_path / "c", s3, media_redirect="presigned") as node_c:
        asked = time.time()  # the store's expiry is counted from when the node answered, after this
        r = HTTP.get(on(node_c, link), follow_redirects=False)
        assert r.status_code == 302
        target = r.headers["location"]
        assert target.startswith(f"{s3.endpoint}/{BUCKET}/media/{done['id']}/2.png?")
        query = parse_qs(urlsplit(target).query)
        assert int(query["X-Amz-Expires"][0]) <= link_expiry - asked + 1
        assert HTTP.get(target).content == HTTP.get(link).content
        assert HTTP.get(on(node_c, link.replace("sig=", "sig=0")), follow_redirects=False).status_code == 403


def test_a_store_that_does_not_answer_is_503_not_500(
    node_a: LiveServer, s3: SeaweedS3, tmp_path: Path
) -> None:
    done = imagine(node_a, "a bridge --seed 13")
    settings = make_settings(
        tmp_path,
        database_url=node_a.settings.resolved_database_url,
        run_worker=False,
        **{**s3.settings(BUCKET, "media"), "s3_endpoint_url": f"http://127.0.0.1:{free_port()}"},
    )
    with LiveServer(settings, None) as cut_off:
        r = HTTP.get(on(cut_off, done["result_data"][0]["image_url"]))
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"


def test_expiry_and_retention_delete_the_tasks_objects(s3: SeaweedS3, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **s3.settings(BUCKET, "expiry"))
    with LiveServer(settings, FakeEngine()) as node:
        client = node.client(node.create_key(credits=1000))
        first = run(client, {"model": "mj-v7", "prompt": "a boat --seed 10"})
        second = run(client, {"model": "mj-v7", "prompt": "a boat --seed 11"})
        for done in (first, second):
            wait_until(lambda d=done: len(s3.keys(BUCKET, f"expiry/{d['id']}/")) == 5, 30, 0.05, "objects")
        reaper = node.runtime.reaper
        # a month on: every link has expired (15 days at most), so the media goes
        assert node.call(reaper.delete_expired_media(time.time() + 30 * DAY)) == 2
        assert s3.keys(BUCKET, f"expiry/{first['id']}/") == s3.keys(BUCKET, f"expiry/{second['id']}/") == []
        assert HTTP.get(first["grid_url"]).status_code in (403, 404)
        # a file written after expiry (a late grid) goes with the task at retention
        node.runtime.media.save_bytes(second["id"], "late.png", b"x", "image/png", 1, 1)
        assert node.call(reaper.delete_old_tasks(time.time() + 100 * DAY)) == 2
        assert s3.keys(BUCKET, "expiry/") == []
    assert s3.keys(BUCKET, "media/")  # the other nodes' prefix is untouched


def test_deletes_go_in_batches_of_at_most_a_thousand_keys(s3: SeaweedS3, tmp_path: Path) -> None:
    store = open_media(make_settings(tmp_path, **s3.settings(BUCKET, "batch")))
    assert isinstance(store, S3MediaStore)
    names = [f"{i}.png" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: store.save_bytes("t1", n, b"x", "image/png", 1, 1), names))
    store.save_bytes("t2", "0.png", b"y", "image/png", 1, 1)
    store.save_bytes("t3", "0.png", b"z", "image/png", 1, 1)
    assert len(s3.keys(BUCKET, "batch/")) == 1007
    store.delete_tasks(["t1", "t2"])
    assert s3.keys(BUCKET, "batch/") == ["batch/t3/0.png"]


def test_media_urls_that_are_not_s3_are_refused() -> None:
    assert parse_media_url("s3://bucket") == ("bucket", "")
    assert parse_media_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    for bad in ("http://bucket/x", "s3:///x", "bucket/x"):
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            parse_media_url(bad)
    with pytest.raises(ValueError):
        open_media(Settings(media_url="file:///tmp/x"))


def test_the_local_store_answers_ranges_too(fake_server: LiveServer) -> None:
    done = imagine(fake_server, "a garden --seed 12")
    link = done["result_data"][0]["image_url"]
    whole = HTTP.get(link).content
    part = HTTP.get(link, headers={"Range": "bytes=8-39"})
    assert part.status_code == 206 and part.content == whole[8:40]
