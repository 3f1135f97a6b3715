"""The words around a picture, end to end: prompt translation, describe and shorten.

A real server on loopback with the real language detector (Lingua), the tiny Marian translator
twin and the tiny Florence-2 captioner twin (engines/local/tiny_text.py), and the tiny diffusion
model. The tiny models' words are random, so expectations come from the same model run directly
(what it gives for "人" is what must follow `--no`), never from fixed strings.
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

import httpx
import pytest
from PIL import Image

from openmj.core.tasks import Operation, Status
from openmj.moderation import PromptModerator
from tests.helpers import image, stored
from tests.live import LiveServer, make_settings, wait_until
from tests.loopback import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FOX = "一只在雪地里的红狐狸"
KEYCAPS = [f"{n}\ufe0f\u20e3" for n in range(1, 6)]


@pytest.fixture(scope="module")
def translator(models_dir: Path) -> Any:
    from openmj.language.models import PRESETS
    from openmj.language.translator import LocalTranslator

    tr = LocalTranslator(PRESETS["tiny"], models_dir)
    tr.load()
    return tr


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_engine: Any, translator: Any) -> Iterator[LiveServer]:
    """Translation as deployed by default (CJK for midjourney-proxy and EvoLink) and Describe on."""
    settings = make_settings(
        tmp_path_factory.mktemp("data-words"), translation_model="tiny", caption_model="tiny-florence-2"
    )
    tiny_engine.pipelines.caption_source = "tiny"  # the shared tiny engine gains the captioner
    try:
        with LiveServer(settings, tiny_engine, translator) as server:
            yield server
    finally:
        tiny_engine.pipelines.caption_source = None


@pytest.fixture(scope="module")
def key(live: LiveServer) -> str:
    return live.create_key(credits=10_000)


def english(translator: Any, text: str) -> str:
    """What the tiny model makes of `text`, cleaned as the core cleans a translation."""
    from openmj.core.prompt.translation import _clean

    return _clean(translator.translate([text], "zh")[0], text)


def png_data(size: tuple[int, int], color: str = "orange") -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# --------------------------------------------------------------------------- translation


def kie_record(client: httpx.Client, task_id: str) -> dict[str, Any]:
    r = client.get("/api/v1/mj/record-info", params={"taskId": task_id})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def kie_generate(client: httpx.Client, prompt: str, translate: bool) -> str:
    body = {"taskType": "mj_txt2img", "prompt": prompt, "speed": "fast", "enableTranslation": translate}
    r = client.post("/api/v1/mj/generate", json=body)
    assert r.status_code == 200 and r.json()["code"] == 200, r.text
    return str(r.json()["data"]["taskId"])


def test_kie_translates_the_words_and_keeps_the_parameters(
    live: LiveServer, key: str, translator: Any
) -> None:
    prompt = f"{FOX} --ar 16:9 --no 人"
    want = f"{english(translator, FOX)} --ar 16:9 --no {english(translator, '人')}"
    with live.client(key) as c:
        task_id = kie_generate(c, prompt, True)
        task = stored(live, task_id)
        assert task.prompt == prompt  # shown as sent …
        assert task.spec["prompt"]["text"] == english(translator, FOX)  # … and the model reads English
        assert task.spec["prompt"]["params"]["no"] == [english(translator, "人")]
        assert task.spec["translation"]["language"] == "zh"
        data = wait_until(lambda: (d := kie_record(c, task_id))["successFlag"] == 1 and d, 300, 0.2)
        assert data["finalPrompt"] == want
        assert '"enableTranslation":true' in data["paramJson"] and FOX in data["paramJson"]
        first = image(data["resultInfoJson"]["resultUrls"][0]["resultUrl"])
        assert abs(first.width / first.height - 16 / 9) < 0.05, first.size  # it ran at 16:9


def test_kie_without_translation_keeps_the_prompt(live: LiveServer, key: str) -> None:
    prompt = f"{FOX} --ar 16:9 --no 人"
    with live.client(key) as c:
        task_id = kie_generate(c, prompt, False)
        assert kie_record(c, task_id)["finalPrompt"] == prompt
        task = stored(live, task_id)
        assert task.spec["prompt"]["text"] == FOX and "translation" not in task.spec


def test_midjourney_proxy_shows_prompt_en(live: LiveServer, key: str, translator: Any) -> None:
    with live.client(key) as c:
        out = c.post("/mj/submit/imagine", json={"prompt": f"{FOX} --ar 2:3"}).json()
        assert out["code"] == 1, out
        task = c.get(f"/mj/task/{out['result']}/fetch").json()
    assert task["prompt"] == f"{FOX} --ar 2:3"
    assert task["promptEn"] == f"{english(translator, FOX)} --ar 2:3"
    assert task["properties"] == {"finalPrompt": task["promptEn"], "finalZhPrompt": f"{FOX} --ar 2:3"}


def test_evolink_translates_cjk_by_default_and_apixo_on_request(
    live: LiveServer, key: str, translator: Any
) -> None:
    with live.client(key) as c:
        zh = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": f"{FOX} --s 50"}).json()
        assert zh["final_prompt"] == f"{english(translator, FOX)} --s 50"
        # the server's scope is CJK: a Spanish prompt through EvoLink (no flag) is read as written
        es = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "un zorro rojo en la nieve"})
        assert es.json()["final_prompt"] == "un zorro rojo en la nieve"
        body = {"mode": "text-to-image", "prompt": "un zorro rojo en la nieve", "enableTranslation": True}
        r = c.post("/api/v1/generateTask/midjourney", json={"input": body})
        assert r.status_code == 200, r.text
        task_id = r.json()["data"]["taskId"]
        status = c.get("/api/v1/statusTask/midjourney", params={"taskId": task_id}).json()["data"]
    task = stored(live, task_id)
    assert task.spec["translation"]["language"] == "es"
    assert status["finalPrompt"] == task.spec["translation"]["prompt"] != "un zorro rojo en la nieve"
    assert task.spec["prompt"]["text"] == status["finalPrompt"]


def test_banned_words_are_caught_in_the_translation(live: LiveServer, key: str, translator: Any) -> None:
    nude = "裸体"
    word = english(translator, nude).split()[0]  # what the model reads: the word to ban here
    service = live.runtime.service
    saved = service.moderator
    service.moderator = PromptModerator(words=[word])
    try:
        with live.client(key) as c:
            out = c.post("/mj/submit/imagine", json={"prompt": f"{nude} --ar 1:1"}).json()
            assert out["code"] == 24 and out["properties"]["bannedWord"] == word, out
            assert out["properties"]["promptEn"] == f"{english(translator, nude)} --ar 1:1"
            failed = kie_record(c, kie_generate(c, nude, True))
            assert failed["successFlag"] in (2, 3) and "banned word" in failed["errorMessage"]
            untranslated = kie_record(c, kie_generate(c, nude, False))
            assert untranslated["successFlag"] == 0  # the model reads the Chinese: nothing banned in it
        service.moderator = PromptModerator(words=[nude])  # written in Chinese, caught as written
        with live.client(key) as c:
            out = c.post("/mj/submit/imagine", json={"prompt": f"一个{nude}的人 --ar 1:1"}).json()
            assert out["code"] == 24 and out["properties"]["bannedWord"] == nude, out
    finally:
        service.moderator = saved


def test_a_translation_model_that_cannot_load_stops_the_start(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "openmj.cli", "serve", "--data-dir", str(tmp_path), "--model", "tiny"]
    cmd += ["--translation-model", f"zh={tmp_path / 'no-such-model'}", "--no-worker"]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "translation model" in done.stderr and "cannot be loaded" in done.stderr
    assert "--translation-model none" in done.stderr


# --------------------------------------------------------------------------- describe


def mj_fetch(c: httpx.Client, task_id: str) -> dict[str, Any]:
    return c.get(f"/mj/task/{task_id}/fetch").json()  # type: ignore[no-any-return]


def mj_wait(c: httpx.Client, task_id: str) -> dict[str, Any]:
    done = wait_until(lambda: (t := mj_fetch(c, task_id))["status"] in ("SUCCESS", "FAILURE") and t, 300, 0.1)
    assert done["status"] == "SUCCESS", done
    return done  # type: ignore[no-any-return]


def described_prompts(task: dict[str, Any]) -> list[str]:
    blocks = task["properties"]["finalPrompt"].split("\n\n")
    assert [b[: len(KEYCAPS[i])] for i, b in enumerate(blocks)] == KEYCAPS[:4], blocks
    return [b[len(KEYCAPS[i]) :].strip() for i, b in enumerate(blocks)]


def test_describe_then_imagine_and_retry(live: LiveServer, key: str) -> None:
    with live.client(key) as c:
        before = c.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
        out = c.post("/mj/submit/describe", json={"base64": png_data((96, 64))}).json()
        assert out["code"] == 1, out
        task = mj_wait(c, out["result"])
        assert task["action"] == "DESCRIBE" and task["description"] == f"/describe {out['result']}.png"
        prompts = described_prompts(task)
        assert len(prompts) == 4 and len(set(prompts)) == 4
        assert all(p.endswith(" --ar 3:2") and len(p) > len(" --ar 3:2") for p in prompts)
        assert task["prompt"] == task["promptEn"] == task["properties"]["finalPrompt"]
        shown = image(task["imageUrl"])
        assert shown.size == (96, 64) and shown.getpixel((10, 10)) == (255, 165, 0)  # the image described
        ids = [b["customId"] for b in task["buttons"]]
        assert ids == [f"MJ::Job::PicReader::{n}" for n in range(1, 5)] + ["MJ::Picread::Retry"]
        after = c.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
        assert before - after == 4  # half of a fast grid, as relays price mj_describe

        act = {"taskId": out["result"], "customId": "MJ::Job::PicReader::2"}
        imagined = c.post("/mj/submit/action", json=act).json()
        assert imagined["code"] == 1, imagined
        grid = mj_wait(c, imagined["result"])
        assert grid["action"] == "IMAGINE" and grid["prompt"] == prompts[1]
        assert len(grid["imageUrls"]) == 4 and abs(grid["width"] / grid["height"] - 1.5) < 0.05

        again = c.post(
            "/mj/submit/action", json={"taskId": out["result"], "customId": "MJ::Picread::Retry"}
        ).json()
        assert again["code"] == 1, again
        retried = mj_wait(c, again["result"])
        assert retried["action"] == "DESCRIBE" and described_prompts(retried) != prompts  # a new seed
        assert stored(live, again["result"]).seed != stored(live, out["result"]).seed


def test_describe_notify_hook_carries_the_prompts(live: LiveServer, key: str) -> None:
    with Receiver(default=[200]) as receiver, live.client(key) as c:
        body = {"base64": png_data((64, 64), "teal"), "notifyHook": receiver.url("/hook"), "state": "s1"}
        out = c.post("/mj/submit/describe", json=body).json()
        assert out["code"] == 1, out
        mj_wait(c, out["result"])
        last = wait_until(
            lambda: [
                b for b in (json.loads(h.body) for h in receiver.hits("/hook")) if b["status"] == "SUCCESS"
            ],
            60,
        )[-1]
    assert last["id"] == out["result"] and last["action"] == "DESCRIBE" and last["state"] == "s1"
    assert len(described_prompts(last)) == 4 and all(p.endswith(" --ar 1:1") for p in described_prompts(last))
    assert [b["customId"] for b in last["buttons"]][-1] == "MJ::Picread::Retry"


def test_describe_link_and_bad_images(live: LiveServer, key: str) -> None:
    with live.client(key) as c:
        tasks_before = c.get("/v1/tasks").json()["total"]
        for body in ({}, {"base64": "bm90IGFuIGltYWdl"}, {"base64": "data:image/png;base64,AAAA"}):
            out = c.post("/mj/submit/describe", json=body).json()
            assert out["code"] != 1 and out["result"] is None, out
        out = c.post("/mj/submit/action", json={"taskId": "nope", "customId": "MJ::Job::PicReader::1"}).json()
        assert out["code"] == 3 or out["code"] == 4, out
        assert c.get("/v1/tasks").json()["total"] == tasks_before  # nothing half made


# --------------------------------------------------------------------------- shorten


LONG = (
    "a breathtaking cinematic photograph of a majestic red fox standing proudly in deep fresh snow, "
    "soft golden morning light, extremely detailed fur, shallow depth of field, award winning"
)


def test_shorten_ranks_words_and_imagines_a_shorter_prompt(live: LiveServer, key: str) -> None:
    with live.client(key) as c:
        before = c.get("/v1/credits").json()["data"]["token"]["remaining_credits"]
        out = c.post("/mj/submit/shorten", json={"prompt": f"{LONG} --ar 16:9 --s 250"}).json()
        assert out["code"] == 1, out
        task = mj_wait(c, out["result"])
        assert before - c.get("/v1/credits").json()["data"]["token"]["remaining_credits"] == 4
        assert task["action"] == "SHORTEN" and task["prompt"] == f"{LONG} --ar 16:9 --s 250"
        text = task["description"]
        assert text.startswith("**IMPORTANT TOKENS**\n") and "**Shortened prompts**" in text
        assert task["properties"]["finalPrompt"] == text
        lines = text.split("**Shortened prompts**\n")[1].split("\n\n")[0].split("\n")
        assert [ln[: len(KEYCAPS[i])] for i, ln in enumerate(lines)] == KEYCAPS
        options = [ln[len(KEYCAPS[i]) :].strip() for i, ln in enumerate(lines)]
        assert len(set(options)) == 5 and all(o.endswith(" --ar 16:9 --s 250") for o in options)
        words = [len(o.split()) for o in options]
        assert words == sorted(words, reverse=True) and words[0] < len(f"{LONG} --ar 16:9 --s 250".split())
        assert "**" in text.split("**Shortened prompts**")[0].removeprefix("**IMPORTANT TOKENS**")
        ids = [b["customId"] for b in task["buttons"]]
        assert ids == [f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)]
        effects = stored(live, out["result"]).output["tokens"]  # type: ignore[index]
        assert len(effects) == len(LONG.split()) and max(s for _, s in effects) == 1.0
        assert len({s for _, s in effects}) > 3  # measured, not a constant

        pick = c.post(
            "/mj/submit/action", json={"taskId": out["result"], "customId": "MJ::Job::PromptAnalyzer::3"}
        )
        picked = pick.json()
        assert picked["code"] == 1, picked
        imagine = stored(live, picked["result"])
        assert imagine.operation is Operation.IMAGINE and imagine.prompt == options[2]
        assert (
            imagine.spec["prompt"]["params"]["ar"] == "16:9"
            and imagine.spec["prompt"]["params"]["stylize"] == 250
        )
        assert imagine.status in (Status.PENDING, Status.PROCESSING, Status.COMPLETED)
