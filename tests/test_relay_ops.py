"""The operations each upstream API can express beyond imagine and its buttons (docs/relay.md, "What
each upstream API is asked"): shorten, the editor and its kin, a clip's upscale, end frames and
loops — each sent only where its API can say it, and refused at submit where none can.

Upstreams are real openmj servers on loopback, their workers on the fake engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openmj.core.tasks import Operation
from tests.fake_engine import FAKE_CLIP_FRAMES, FakeEngine
from tests.helpers import balance, image, stored, submit, wait_task
from tests.http_client import HTTP
from tests.live import LiveServer, make_settings
from tests.relaying import (
    clip_frames,
    gateway,
    imagine,
    ledger_matches,
    mj_task,
    png_data_url,
    provider,
    tasks_of,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """One openmj upstream for every API: video and describe on, so every route answers."""
    settings = make_settings(tmp_path_factory.mktemp("up"), video_model="tiny-video", caption_model="tiny")
    with LiveServer(settings, FakeEngine()) as live:
        yield live, live.create_key(credits=100_000)


def theirs(gw: LiveServer, up: LiveServer, task_id: str) -> Any:
    """The upstream's own task behind one of the gateway's."""
    return stored(up, stored(gw, task_id).output["upstream"]["task_id"])  # type: ignore[index]


def test_shorten_goes_only_to_midjourney_proxy(tmp_path: Path, up: tuple[LiveServer, str]) -> None:
    live, key_up = up
    providers = [  # kie.ai has no shorten: it is never asked, though its tier comes first
        provider("kie", "kie", live.url, key_up, priority=10),
        provider("mj", "mjproxy", live.url, key_up),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=100)
        with gw.client(key) as c:
            prompt = "a very small red fox sleeping in deep snow --ar 3:2"
            answer = c.post("/mj/submit/shorten", json={"prompt": prompt}).json()
            assert answer["code"] == 1, answer
            done = mj_task(c, answer["result"])
            assert done["status"] == "SUCCESS", done["failReason"]
            ours, made = stored(gw, done["id"]), theirs(gw, live, done["id"])
            assert made.operation is Operation.SHORTEN and made.prompt == prompt
            assert ours.output["upstream"]["provider"] == "mj"  # type: ignore[index]
            # the five prompts as the upstream made them, its words marked the same way
            assert ours.output["prompts"] == made.output["prompts"]  # type: ignore[index]
            assert [w for w, _ in ours.output["tokens"]] == [w for w, _ in made.output["tokens"]]  # type: ignore[index]
            assert (
                done["properties"]["finalPrompt"]
                == c.get(f"/mj/task/{done['id']}/fetch").json()["description"]
            )
            analyzers = [b["customId"] for b in done["buttons"]]
            assert analyzers == [f"MJ::Job::PromptAnalyzer::{i}" for i in range(1, 6)], analyzers
            # and a shortened prompt imagines like any other
            pressed = c.post(
                "/mj/submit/action", json={"taskId": done["id"], "customId": "MJ::Job::PromptAnalyzer::2"}
            ).json()
            grid = mj_task(c, pressed["result"])
            assert grid["status"] == "SUCCESS" and len(grid["imageUrls"]) == 4, grid["failReason"]
            assert theirs(gw, live, grid["id"]).prompt.startswith(made.output["prompts"][1])  # type: ignore[index]
        ledger_matches(gw, key)


CANVAS = {
    "canvas": {"width": 600, "height": 300},
    "img_pos": {"width": 300, "height": 200, "x": 150, "y": 50},
}
MASK = {"areas": [{"width": 600, "height": 300, "points": [0, 0, 150, 0, 150, 300, 0, 300]}]}


def canvas_requests(grid: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each canvas operation as an EvoLink client asks the gateway; the picture uploaded is one the
    gateway made (any link the upstream can fetch would do)."""
    photo = grid["results"][1]
    on = {"task_id": grid["id"], "image_number": 1}
    return {
        "edit": {"model": "mj-v7-edit", "prompt": "wider", "model_params": {**on, **CANVAS}},
        "upload_paint": {
            "model": "mj-v7-upload-paint",
            "prompt": "a beach",
            "image_urls": [photo],
            "model_params": {**CANVAS, "mask": MASK},
        },
        "retexture": {"model": "mj-v7-retexture", "prompt": "made of wood", "image_urls": [photo]},
        "remove_bg": {"model": "mj-v7-remove-bg", "image_urls": [photo]},
    }


#: per upstream API, the canvas operations it can be asked, and what the upstream runs for each
CANVAS_OPS = {
    "evolink": {op: op for op in ("edit", "upload_paint", "retexture", "remove_bg")},
    # APIXO's image-edit takes a picture, not a task: an edit reaches it as the source's picture
    "apixo": {"edit": "upload_paint", "upload_paint": "upload_paint"},
    "mjproxy": {"retexture": "retexture"},
}


@pytest.mark.parametrize("dialect", list(CANVAS_OPS))
def test_canvas_operations_are_relayed_where_the_api_names_them(
    tmp_path: Path, up: tuple[LiveServer, str], dialect: str
) -> None:
    live, key_up = up
    providers = [provider("made-it", dialect, live.url, key_up)]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        asks = canvas_requests(grid)
        with gw.client(key) as c:
            for op in asks:
                if op not in CANVAS_OPS[dialect]:
                    refused = c.post("/v1/images/generations", json=asks[op])
                    assert refused.status_code == 400, (op, refused.text)
                    assert "none of its providers offers it" in refused.json()["error"]["message"]
                    continue
                done = wait_task(c, submit(c, asks[op])["id"], 120)
                assert done["status"] == "completed", (op, done)
                made = theirs(gw, live, done["id"])
                assert made.operation is Operation(CANVAS_OPS[dialect][op]), op
                ours = [image(u) for u in done["results"]]
                assert [p.size for p in ours] == [(r.width, r.height) for r in made.results], op
                if op in ("edit", "upload_paint"):
                    assert made.spec["options"]["canvas"] == CANVAS["canvas"], op
                if op == "edit" and dialect == "apixo":  # the gateway's copy of the source, by link
                    assert made.spec["options"]["image_url"].startswith(gw.url + "/media/")
                    assert made.spec["options"]["mask"]["areas"], "the canvas around the image"
                if op == "edit" and dialect == "evolink":  # by EvoLink's own task id
                    assert made.parent_id == stored(gw, grid["id"]).output["upstream"]["task_id"]  # type: ignore[index]
                if op == "remove_bg":
                    cut = HTTP.get(done["results"][0]).content
                    assert b"IHDR" in cut[:40] and cut[25] == 6  # an RGBA PNG: its transparency kept
        ledger_matches(gw, key)


def test_video_extras_go_only_where_they_can_be_said(tmp_path: Path, up: tuple[LiveServer, str]) -> None:
    """kie.ai's video has no end frame, no loop and no clip upscale: a video asking for them goes to
    midjourney-proxy though kie's tier comes first; a plain one still goes to kie."""
    live, key_up = up
    providers = [
        provider("kie", "kie", live.url, key_up, priority=10),
        provider("mj", "mjproxy", live.url, key_up),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        start, end = grid["results"][0], png_data_url((64, 48), (250, 10, 10))
        with gw.client(key) as c:

            def video(**extra: Any) -> dict[str, Any]:
                body = {"image": start, "motion": "low", "batchSize": 1, "prompt": "waves", **extra}
                answer = c.post("/mj/submit/video", json=body).json()
                assert answer["code"] == 1, answer
                done = mj_task(c, answer["result"])
                assert done["status"] == "SUCCESS", done["failReason"]
                return done

            plain, ending, looping = video(), video(endImage=end), video(loop=True)
            where = {n: stored(gw, t["id"]).output["upstream"]["provider"] for n, t in  # type: ignore[index]
                     (("plain", plain), ("end", ending), ("loop", looping))}  # fmt: skip
            assert where == {"plain": "kie", "end": "mj", "loop": "mj"}
            made = theirs(gw, live, ending["id"])
            assert made.spec["video"]["end_url"].startswith("data:image/png")  # the frame itself
            assert theirs(gw, live, looping["id"]).spec["video"]["loop"] is True
            # a clip's upscale: midjourney-proxy's button on the video that made it
            (button,) = [b["customId"] for b in ending["buttons"] if "video_virtual_upscale" in b["customId"]]
            pressed = c.post("/mj/submit/action", json={"taskId": ending["id"], "customId": button}).json()
            assert pressed["code"] == 1, pressed
            hd = mj_task(c, pressed["result"])
            assert hd["status"] == "SUCCESS", hd["failReason"]
            bigger = theirs(gw, live, hd["id"])
            assert bigger.operation is Operation.VIDEO_UPSCALE and bigger.parent_id == made.id
            (clip,) = [v["url"] for v in hd["videoUrls"]]
            size = (bigger.spec["video"]["width"], bigger.spec["video"]["height"])
            assert clip_frames(clip) == (FAKE_CLIP_FRAMES, size) and size[0] > made.spec["video"]["width"]
            # kie made the plain one and has no upscale: the pinned follow-up fails, refunded
            (button,) = [b["customId"] for b in plain["buttons"] if "video_virtual_upscale" in b["customId"]]
            before = balance(c)
            pressed = c.post("/mj/submit/action", json={"taskId": plain["id"], "customId": button}).json()
            failed = mj_task(c, pressed["result"])
            assert failed["status"] == "FAILURE" and "cannot video_upscale" in failed["failReason"], failed
            assert balance(c) == before
        ledger_matches(gw, key)


def test_what_no_provider_can_say_is_refused_at_submit(tmp_path: Path, up: tuple[LiveServer, str]) -> None:
    live, key_up = up
    with gateway(tmp_path, [provider("kie", "kie", live.url, key_up)]) as gw:
        key = gw.create_key(credits=100)
        grid = imagine(gw, key)
        sent = len(tasks_of(live, key_up))
        with gw.client(key) as c:
            before = balance(c)
            shorten = c.post("/mj/submit/shorten", json={"prompt": "a small red fox in the snow"}).json()
            assert shorten["code"] != 1 and "none of its providers offers it" in shorten["description"]
            body = {"image": grid["results"][0], "endImage": grid["results"][1], "prompt": "waves"}
            ending = c.post("/mj/submit/video", json=body).json()
            assert ending["code"] != 1, ending
            assert "'video with an end frame' is not supported" in ending["description"]
            kie_loop = {"taskType": "mj_video", "prompt": "waves --loop", "fileUrls": [grid["results"][0]]}
            looped = c.post("/api/v1/mj/generate", json=kie_loop).json()
            assert looped["code"] != 200 and "as a loop" in looped["msg"], looped
            cut = c.post("/v1/images/generations", json=canvas_requests(grid)["remove_bg"])
            assert cut.status_code == 400 and "remove_bg" in cut.json()["error"]["message"]
            assert balance(c) == before  # nothing charged
        assert len(tasks_of(live, key_up)) == sent  # nothing sent
        ledger_matches(gw, key)


def test_an_animate_its_maker_cannot_do_goes_where_the_picture_can(
    tmp_path: Path, up: tuple[LiveServer, str]
) -> None:
    """EvoLink made the picture and has no video; kie.ai takes a start image by its link, so the
    animate goes there: a follow-up an API takes as the picture itself is not tied to its maker."""
    live, key_up = up
    providers = [
        provider("evo", "evolink", live.url, key_up, priority=10),
        provider("kie", "kie", live.url, key_up),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        gid = grid["id"]
        with gw.client(key) as c:
            u1 = c.post("/mj/submit/action", json={"taskId": gid, "customId": f"MJ::JOB::upsample::1::{gid}"})
            upscale = mj_task(c, u1.json()["result"])
            assert theirs(gw, live, upscale["id"]).operation is Operation.UPSCALE  # pinned to evo
            (animate,) = [b["customId"] for b in upscale["buttons"] if "animate_low::" in b["customId"]]
            pressed = c.post("/mj/submit/action", json={"taskId": upscale["id"], "customId": animate}).json()
            assert pressed["code"] == 1, pressed
            video = mj_task(c, pressed["result"])
            assert video["status"] == "SUCCESS", video["failReason"]
            assert stored(gw, video["id"]).output["upstream"]["provider"] == "kie"  # type: ignore[index]
            made = theirs(gw, live, video["id"])
            assert made.operation is Operation.VIDEO and made.parent_id is None
            assert made.spec["video"]["start_url"].startswith(gw.url + "/media/" + upscale["id"])
        ledger_matches(gw, key)
