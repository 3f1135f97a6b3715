"""openmj as a gateway (docs/relay.md): tasks relayed to upstream providers, with failover.

Upstreams are real openmj servers on loopback (their workers on the fake engine: what is under test
is the relay, not pictures) and a scripted midjourney-proxy upstream that injects faults (500, 429,
malformed JSON, a banned-word refusal, a task accepted and then failed, a task that waits).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from openmj.core.tasks import Operation, Status
from tests.fake_engine import FakeEngine
from tests.helpers import balance, image, stored, submit, wait_task
from tests.http_client import HTTP
from tests.live import LiveServer, make_settings, wait_until
from tests.relaying import (
    Scripted,
    clip_frames,
    dead_url,
    gateway,
    imagine,
    ledger_matches,
    mj_action,
    mj_task,
    png_data_url,
    provider,
    tasks_of,
    toml,
)

pytestmark = pytest.mark.timeout(600)


# --------------------------------------------------------------------------- upstreams


@pytest.fixture(scope="module")
def kie_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("up-kie")), FakeEngine()) as up:
        yield up, up.create_key(credits=100_000)


@pytest.fixture(scope="module")
def mj_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("up-mj")), FakeEngine()) as up:
        yield up, up.create_key(credits=100_000)


# --------------------------------------------------------------------------- tests


def test_imagine_fails_over_from_a_dead_tier_and_is_rehosted(
    tmp_path: Path, kie_up: tuple[LiveServer, str], mj_up: tuple[LiveServer, str]
) -> None:
    (kie, kie_key), (mj, mj_key) = kie_up, mj_up
    providers = [
        provider("dead", "evolink", dead_url(), priority=20),
        provider("kie", "kie", kie.url, kie_key, priority=10),
        provider("mj", "mjproxy", mj.url, mj_key, priority=10),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=100)
        done = imagine(gw, key)
        assert done["status"] == "completed", done
        assert len(done["results"]) == 4 and all(u.startswith(gw.url + "/media/") for u in done["results"])
        text = json.dumps(done)
        assert kie.url not in text and mj.url not in text  # the upstream's host never appears
        task = stored(gw, done["id"])
        note = task.output["upstream"]  # type: ignore[index]
        up = kie if note["provider"] == "kie" else mj
        theirs = stored(up, note["task_id"])
        assert theirs.status is Status.COMPLETED and theirs.spec["prompt"]["params"]["ar"] == "4:3"
        ours = [image(u) for u in done["results"]]
        first = up.runtime.media.path(theirs.id, theirs.results[0].name).read_bytes()
        assert ours[0].tobytes() == Image.open(io.BytesIO(first)).convert("RGB").tobytes()
        assert gw.runtime.engine.health._failures.get("dead", 0) >= 1  # tried first, failed over
        assert done["usage"]["credits_used"] == 8
        ledger_matches(gw, key)


#: per upstream API: the follow-ups to press on the gateway → (operation upstream, its image index)
FOLLOWUPS = {
    "evolink": ["U2", "V3", "zoom", "pan"],
    "kie": ["U2", "V3"],
    "apixo": ["U2", "V3", "reroll"],
    "mjproxy": ["U2", "V3", "reroll"],
}


@pytest.mark.parametrize("dialect", list(FOLLOWUPS))
def test_followups_go_to_the_upstream_that_made_the_grid(
    tmp_path: Path, kie_up: tuple[LiveServer, str], mj_up: tuple[LiveServer, str], dialect: str
) -> None:
    (up, up_key), (other, other_key) = kie_up, mj_up
    providers = [
        provider("made-it", dialect, up.url, up_key, priority=10),
        provider("other", "kie", other.url, other_key, priority=1),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        made = stored(gw, grid["id"]).output["upstream"]  # type: ignore[index]
        assert made["provider"] == "made-it"
        gid = grid["id"]
        with gw.client(key) as c:

            def evo(model: str, **params: Any) -> str:
                return str(submit(c, {"model": model, "model_params": {"task_id": gid, **params}})["id"])

            presses = {  # each through whichever of the gateway's APIs names it
                "U2": lambda: mj_action(c, gid, f"MJ::JOB::upsample::2::{gid}"),
                "V3": lambda: evo("mj-v7-variation", image_number=2),
                "zoom": lambda: evo("mj-v7-outpaint", scale=2),
                "pan": lambda: evo("mj-v7-pan", direction="left"),
                "reroll": lambda: mj_action(c, gid, f"MJ::JOB::reroll::0::{gid}::SOLO"),
            }
            expected = {
                "U2": (Operation.UPSCALE, 1), "V3": (Operation.VARIATION, 2), "zoom": (Operation.ZOOM, 0),
                "pan": (Operation.PAN, 0), "reroll": (Operation.REROLL, None),
            }  # fmt: skip
            for press in FOLLOWUPS[dialect]:
                task_id = presses[press]()
                done = wait_task(c, task_id, 120)
                assert done["status"] == "completed", (press, done)
                note = stored(gw, task_id).output["upstream"]  # type: ignore[index]
                assert note["provider"] == "made-it", press  # pinned, though "other" serves it too
                theirs = stored(up, note["task_id"])
                operation, index = expected[press]
                assert theirs.operation is operation, press
                assert theirs.parent_id == made["task_id"] and theirs.parent_index == index, press
        ledger_matches(gw, key)


@pytest.mark.parametrize("dialect", ["evolink", "mjproxy"])
def test_vary_region_goes_to_the_upstream_that_made_the_upscale(
    tmp_path: Path, mj_up: tuple[LiveServer, str], dialect: str
) -> None:
    up, up_key = mj_up
    with gateway(tmp_path, [provider("made-it", dialect, up.url, up_key)]) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        with gw.client(key) as c:
            upscale = wait_task(c, mj_action(c, grid["id"], f"MJ::JOB::upsample::2::{grid['id']}"), 60)
            assert upscale["status"] == "completed", upscale
            area = {"width": 64, "height": 48, "points": [0, 0, 32, 0, 32, 48, 0, 48]}  # the left half
            params = {"task_id": upscale["id"], "image_number": 0, "mask": {"areas": [area]}}
            body = {"model": "mj-v7-inpaint", "prompt": "a red door", "model_params": params}
            done = wait_task(c, submit(c, body)["id"], 60)
            assert done["status"] == "completed" and len(done["results"]) == 4, done
        theirs = stored(up, stored(gw, done["id"]).output["upstream"]["task_id"])  # type: ignore[index]
        made_upscale = stored(gw, upscale["id"]).output["upstream"]["task_id"]  # type: ignore[index]
        assert theirs.operation is Operation.INPAINT and theirs.parent_id == made_upscale
        mask = theirs.spec["options"]["mask"]
        if dialect == "evolink":
            assert mask == {"areas": [area]}  # EvoLink takes the areas as they are
        else:  # midjourney-proxy takes a PNG: the areas drawn, white where it repaints
            drawn = Image.open(io.BytesIO(base64.b64decode(mask["url"].split(",", 1)[1])))
            assert drawn.size == (64, 48)
            assert drawn.convert("L").getpixel((10, 20)) == 255 and drawn.convert("L").getpixel((50, 20)) == 0
        assert "red door" in theirs.prompt
        ledger_matches(gw, key)


@pytest.fixture(scope="module")
def video_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    settings = make_settings(
        tmp_path_factory.mktemp("up-video"), video_model="tiny-video", caption_model="tiny"
    )
    with LiveServer(settings, FakeEngine()) as up:
        yield up, up.create_key(credits=100_000)


@pytest.mark.parametrize("dialect", ["kie", "mjproxy"])
def test_video_and_extend_are_relayed_and_the_clips_rehosted(
    tmp_path: Path, video_up: tuple[LiveServer, str], dialect: str
) -> None:
    from tests.fake_engine import FAKE_CLIP_FRAMES, FAKE_EXTEND_FRAMES

    up, up_key = video_up
    with gateway(tmp_path, [provider("made-it", dialect, up.url, up_key)]) as gw:
        key = gw.create_key(credits=1000)
        grid = imagine(gw, key)
        with gw.client(key) as c:
            # animate one of the gateway's own (rehosted) pictures, by its link
            body = {"image": grid["results"][1], "motion": "low", "batchSize": 2, "prompt": "waves roll in"}
            started = c.post("/mj/submit/video", json=body).json()
            assert started["code"] == 1, started
            video = mj_task(c, started["result"])
            assert video["status"] == "SUCCESS" and video["action"] == "VIDEO", video["failReason"]
            links = [v["url"] for v in video["videoUrls"]]
            assert len(links) == 2 and all(u.startswith(gw.url + "/media/") for u in links)
            assert up.url not in json.dumps(video)
            theirs = stored(up, stored(gw, video["id"]).output["upstream"]["task_id"])  # type: ignore[index]
            assert theirs.operation is Operation.VIDEO and theirs.spec["video"]["batch"] == 2
            size = (theirs.spec["video"]["width"], theirs.spec["video"]["height"])
            assert all(clip_frames(u) == (FAKE_CLIP_FRAMES, size) for u in links)
            # Extend goes to the upstream that made the clip, naming its task and the clip
            ext = {"action": "extend", "taskId": video["id"], "index": 1, "motion": "low"}
            answer = c.post("/mj/submit/video", json=ext).json()
            assert answer["code"] == 1, answer
            extended = mj_task(c, answer["result"])
            assert extended["status"] == "SUCCESS", extended
            longer = stored(up, stored(gw, extended["id"]).output["upstream"]["task_id"])  # type: ignore[index]
            assert longer.operation is Operation.VIDEO_EXTEND
            assert (longer.parent_id, longer.parent_index) == (theirs.id, 1)
            (clip,) = [v["url"] for v in extended["videoUrls"]]
            assert clip_frames(clip) == (FAKE_CLIP_FRAMES + FAKE_EXTEND_FRAMES, size)
        ledger_matches(gw, key)


def test_blend_and_describe_are_relayed_to_midjourney_proxy(
    tmp_path: Path, video_up: tuple[LiveServer, str]
) -> None:
    up, up_key = video_up
    with gateway(tmp_path, [provider("mj", "mjproxy", up.url, up_key)]) as gw:
        key = gw.create_key(credits=1000)
        with gw.client(key) as c:
            pictures = [png_data_url((64, 64), (200, 30, 30)), png_data_url((64, 64), (30, 30, 200))]
            blend = c.post(
                "/mj/submit/blend", json={"base64Array": pictures, "dimensions": "PORTRAIT"}
            ).json()
            assert blend["code"] == 1, blend
            blended = mj_task(c, blend["result"])
            assert blended["status"] == "SUCCESS" and len(blended["imageUrls"]) == 4, blended["failReason"]
            theirs = stored(up, stored(gw, blended["id"]).output["upstream"]["task_id"])  # type: ignore[index]
            assert theirs.operation is Operation.BLEND and theirs.spec["options"]["dimensions"] == "2:3"
            assert len(theirs.spec["options"]["image_urls"]) == 2
            seen = png_data_url((96, 64), (10, 160, 90))
            ask = c.post("/mj/submit/describe", json={"base64": seen}).json()
            assert ask["code"] == 1, ask
            described = mj_task(c, ask["result"])
            assert described["status"] == "SUCCESS", described["failReason"]
            ours = stored(gw, described["id"]).output
            theirs = stored(up, ours["upstream"]["task_id"])  # type: ignore[index]
            assert theirs.operation is Operation.DESCRIBE
            assert ours["prompts"] == theirs.output["prompts"]  # type: ignore[index]
            assert ours["prompts"][0].endswith("--ar 3:2") and "colour 10 160 90" in ours["prompts"][0]
            assert "1️⃣" in described["prompt"] and any(
                b["customId"].startswith("MJ::Job::PicReader::1") for b in described["buttons"]
            ), described["buttons"]
        ledger_matches(gw, key)


def test_a_followup_the_pinned_provider_cannot_do_fails_and_is_refunded(
    tmp_path: Path, kie_up: tuple[LiveServer, str]
) -> None:
    kie, kie_key = kie_up
    with gateway(
        tmp_path,
        [provider("kie", "kie", kie.url, kie_key), provider("evo", "evolink", kie.url, kie_key, priority=-1)],
    ) as gw:
        key = gw.create_key(credits=100)
        grid = imagine(gw, key)
        assert stored(gw, grid["id"]).output["upstream"]["provider"] == "kie"  # type: ignore[index]
        with gw.client(key) as c:  # kie has no zoom; EvoLink does, but it did not make the grid
            done = wait_task(
                c, submit(c, {"model": "mj-v7-outpaint", "model_params": {"task_id": grid["id"]}})["id"]
            )
            assert done["status"] == "failed" and "cannot zoom" in done["error"]["message"], done
            assert balance(c) == 92
        ledger_matches(gw, key)


@pytest.mark.parametrize("mode", ["500", "malformed", "hang", "accept_then_fail", "expired"])
def test_upstream_faults_fail_over_and_charge_once(
    tmp_path: Path, kie_up: tuple[LiveServer, str], mode: str
) -> None:
    kie, kie_key = kie_up
    with Scripted(mode) as bad:
        providers = [
            provider("bad", "mjproxy", bad.url(""), priority=10, timeout_s=1),
            provider("kie", "kie", kie.url, kie_key),
        ]
        with gateway(tmp_path, providers) as gw:
            key = gw.create_key(credits=100)
            done = imagine(gw, key)
            assert done["status"] == "completed", done
            assert stored(gw, done["id"]).output["upstream"]["provider"] == "kie"  # type: ignore[index]
            assert len(bad.hits("/mj/submit/imagine")) == 1  # tried once, then excluded for this task
            assert done["usage"]["credits_used"] == 8
            with gw.client(key) as c:
                assert balance(c) == 92
            ledger_matches(gw, key)


def test_an_upstream_killed_mid_task_fails_over_once(tmp_path: Path, kie_up: tuple[LiveServer, str]) -> None:
    kie, kie_key = kie_up
    slow = Scripted("slow").start()
    providers = [
        provider("slow", "mjproxy", slow.url(""), priority=10),
        provider("kie", "kie", kie.url, kie_key),
    ]
    with gateway(tmp_path, providers) as gw:
        key = gw.create_key(credits=100)
        with gw.client(key) as c:
            task_id = submit(c, {"model": "mj-v7", "prompt": "a lynx"})["id"]
            wait_until(lambda: slow.polls_of("up-1"), 60, what="a poll of up-1")
            slow.stop()  # the upstream dies holding the task: polls cannot reach it any more
            done = wait_task(c, task_id, 120)
            assert done["status"] == "completed", done
            assert stored(gw, task_id).output["upstream"]["provider"] == "kie"  # type: ignore[index]
            assert done["usage"]["credits_used"] == 8 and balance(c) == 92  # charged once, not refunded
        ledger_matches(gw, key)


def test_many_relayed_tasks_wait_at_once(tmp_path: Path) -> None:
    with Scripted("slow") as slow, gateway(tmp_path, [provider("slow", "mjproxy", slow.url(""))]) as gw:
        key = gw.create_key(credits=1000)
        with gw.client(key) as c:
            ids = [submit(c, {"model": "mj-v7", "prompt": f"a fox number {i}"})["id"] for i in range(20)]
            # one worker holds all twenty at the upstream at once: none has finished yet
            wait_until(lambda: slow.count == 20, 60, what="20 tasks at the upstream")
            assert all(c.get(f"/v1/tasks/{i}").json()["status"] == "processing" for i in ids)
            slow.release.set()
            done = [wait_task(c, i, 60) for i in ids]
        assert all(d["status"] == "completed" and len(d["results"]) == 4 for d in done)
        assert len(slow.hits("/mj/submit/imagine")) == 20 and len(gw.runtime.workers) == 1
        # waited on in bulk, as new-api polls midjourney-proxy: one read for all twenty, none alone
        bulk = [json.loads(h.body)["ids"] for h in slow.hits("/mj/task/list-by-condition")]
        assert any(len(ids) == 20 for ids in bulk), [len(ids) for ids in bulk]
        assert not [p for p in slow.paths() if p.endswith("/fetch")]
        assert len(bulk) < sum(slow.polls_of(f"up-{n}") for n in range(1, 21)) / 5


def test_an_upstream_without_a_bulk_read_is_polled_task_by_task(tmp_path: Path) -> None:
    with (
        Scripted("slow", bulk=False) as slow,
        gateway(tmp_path, [provider("old", "mjproxy", slow.url(""))]) as gw,
    ):
        key = gw.create_key(credits=100)
        with gw.client(key) as c:
            ids = [submit(c, {"model": "mj-v7", "prompt": f"an owl {i}"})["id"] for i in range(3)]
            wait_until(lambda: all(slow.hits(f"/mj/task/up-{n}/fetch") for n in (1, 2, 3)), 60)
            slow.release.set()
            assert all(wait_task(c, i, 60)["status"] == "completed" for i in ids)
        assert len(slow.hits("/mj/task/list-by-condition")) == 1  # asked once, 404: not again


def test_an_upstream_callback_finishes_the_task_at_once(tmp_path: Path) -> None:
    """Polled once an hour, the task still completes: the upstream's notifyHook wakes it."""
    with Scripted("slow") as slow:
        hourly = provider("hooked", "mjproxy", slow.url(""), poll_s=3600, callbacks=True)
        with gateway(tmp_path, [hourly]) as gw:
            key = gw.create_key(credits=100)
            with gw.client(key) as c:
                task_id = submit(c, {"model": "mj-v7", "prompt": "a heron"})["id"]
                wait_until(lambda: slow.polls_of("up-1"), 60, what="the first poll")
                hook = slow.hooks["up-1"]
                assert hook.startswith(f"{gw.url}/relay/hooks/{task_id}?")
                # a hook URL is good for its own task only, and only as signed
                other = hook.replace(task_id, "mj_" + "0" * 20)
                tampered = hook[:-4] + ("0000" if not hook.endswith("0000") else "1111")
                assert HTTP.post(other, json={}).status_code == 403
                assert HTTP.post(tampered, json={}).status_code == 403
                assert c.get(f"/v1/tasks/{task_id}").json()["status"] == "processing"
                slow.release.set()
                answer = HTTP.post(hook, json={"id": "up-1", "status": "SUCCESS"})
                assert answer.status_code == 200, answer.text
                done = wait_task(c, task_id, 60)  # far sooner than the next poll, an hour away
                assert done["status"] == "completed" and len(done["results"]) == 4, done
                assert slow.polls_of("up-1") == 2  # the first poll, and the one the callback asked for
            ledger_matches(gw, key)


def test_upstream_cost_is_recorded_and_openmj_usage_sums_it(
    tmp_path: Path, kie_up: tuple[LiveServer, str]
) -> None:
    kie, kie_key = kie_up
    priced = provider("evo", "evolink", kie.url, kie_key, cost={"imagine": 0.05, "*": 0.02}, cost_unit="USD")
    with gateway(tmp_path, [priced]) as gw:
        key = gw.create_key(credits=100)
        grid = imagine(gw, key)
        with gw.client(key) as c:
            body = {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 0}}
            assert wait_task(c, submit(c, body)["id"], 60)["status"] == "completed"
            spent = 100 - balance(c)
        note = stored(gw, grid["id"]).output["upstream"]  # type: ignore[index]
        # the configured cost, and the upstream's own figure (openmj's EvoLink answer has usage)
        assert note["cost"] == 0.05 and note["cost_unit"] == "USD" and note["credits"] == 8
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "openmj.cli", "usage", "--data-dir", str(tmp_path / "data")]
    out = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, check=True)
    (evo,) = json.loads(out.stdout)["providers"]
    assert evo["provider"] == "evo" and evo["completed"] == 2 and evo["failed"] == 0
    assert evo["cost"] == {"USD": pytest.approx(0.07)} and evo["charged"] == spent
    assert evo["by_operation"] == {"imagine": 1, "upscale": 1}
    table = subprocess.run(cli, env=env, capture_output=True, text=True, check=True).stdout
    assert "evo" in table and "0.07 USD" in table


def test_an_upstream_task_that_never_finishes_fails_at_the_time_out_and_is_refunded(tmp_path: Path) -> None:
    with Scripted("slow") as slow, gateway(tmp_path, [provider("stuck", "mjproxy", slow.url(""))],
                                           task_timeout_seconds=1) as gw:  # fmt: skip
        key = gw.create_key(credits=100)
        with gw.client(key) as c:
            done = wait_task(c, submit(c, {"model": "mj-v7", "prompt": "a mole"})["id"], 60)
            assert done["status"] == "failed" and done["error"]["code"] == "generation_timeout", done
            assert balance(c) == 100
        assert len(slow.hits("/mj/submit/imagine")) == 1  # not sent anywhere else after its time
        ledger_matches(gw, key)


def test_a_429_cools_the_provider_down(tmp_path: Path, kie_up: tuple[LiveServer, str]) -> None:
    kie, kie_key = kie_up
    with Scripted("429") as busy:
        providers = [
            provider("busy", "mjproxy", busy.url(""), priority=10),
            provider("kie", "kie", kie.url, kie_key),
        ]
        with gateway(tmp_path, providers) as gw:
            key = gw.create_key(credits=100)
            assert imagine(gw, key)["status"] == "completed"
            assert imagine(gw, key)["status"] == "completed"
            assert len(busy.hits("/mj/submit/imagine")) == 1  # Retry-After: 60 — not asked again


def test_a_refusal_that_is_the_clients_is_not_retried(tmp_path: Path, kie_up: tuple[LiveServer, str]) -> None:
    kie, kie_key = kie_up
    with Scripted("banned") as strict:
        providers = [
            provider("strict", "mjproxy", strict.url(""), priority=10),
            provider("kie", "kie", kie.url, kie_key),
        ]
        with gateway(tmp_path, providers) as gw:
            key = gw.create_key(credits=100)
            done = imagine(gw, key, "a forbidden thing")
            assert done["status"] == "failed" and done["error"]["code"] == "content_policy_violation", done
            assert len(strict.hits("/mj/submit/imagine")) == 1
            sent_on = [t for t in tasks_of(kie, kie_key) if t.prompt.startswith("a forbidden thing")]
            assert sent_on == []  # the next provider never saw it
            with gw.client(key) as c:
                assert balance(c) == 100  # refunded
            ledger_matches(gw, key)


def test_a_pinned_followup_whose_provider_is_gone_fails_and_is_refunded(
    tmp_path: Path, kie_up: tuple[LiveServer, str]
) -> None:
    kie, kie_key = kie_up
    with gateway(tmp_path, [provider("kie", "kie", kie.url, kie_key)]) as gw:
        key = gw.create_key(credits=100)
        grid = imagine(gw, key)
    # the same data folder, the provider that made the grid removed from the file
    with gateway(tmp_path, [provider("other", "kie", kie.url, kie_key)]) as gw:
        with gw.client(key) as c:
            body = {"model": "mj-v7-upscale", "model_params": {"task_id": grid["id"], "image_number": 1}}
            done = wait_task(c, submit(c, body)["id"], 60)
            assert done["status"] == "failed" and "no longer configured" in done["error"]["message"], done
            assert balance(c) == 92  # the grid's 8; the upscale refunded
        ledger_matches(gw, key)


def test_providers_commands(tmp_path: Path, kie_up: tuple[LiveServer, str]) -> None:
    kie, kie_key = kie_up
    path = tmp_path / "p.toml"
    path.write_text(
        toml(
            [provider("kie-a", "evolink", kie.url, kie_key, priority=5), provider("dead", "kie", dead_url())]
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "openmj.cli", "providers"]
    listed = subprocess.run([*cli, "list", "--providers", str(path)], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "kie-a" in listed.stdout and "set" in listed.stdout
    assert kie_key not in listed.stdout + listed.stderr  # keys are never shown
    checked = subprocess.run(
        [*cli, "check", "--providers", str(path)], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 1, checked.stdout  # one provider does not answer
    row = next(line for line in checked.stdout.splitlines() if "kie-a" in line)
    with kie.client(kie_key) as c:
        left = balance(c)
    assert (
        "yes" in row and "accepted" in row and str(left) in row
    )  # its balance, through EvoLink's /v1/credits
    assert "NO" in next(line for line in checked.stdout.splitlines() if "dead" in line)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[providers]]\nname = "x"\ndialect = "nope"\nbase_url = "http://a"\n')
    refused = subprocess.run([*cli, "list", "--providers", str(bad)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "providers.0.dialect" in refused.stderr
