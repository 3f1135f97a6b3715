"""Issue 6: the kie.ai dialect (/api/v1/mj/*) over real HTTP, on the fake engine (spec §2, seed 003)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from openmj.core.tasks import Operation, Speed, Status, Task
from openmj.dialects import kie
from tests.helpers import balance, image, stored, task_count
from tests.live import LiveServer, wait_until

pytestmark = pytest.mark.timeout(600)
GEN = "/api/v1/mj/generate"
INFO = "/api/v1/mj/record-info"
UPSCALE = "/api/v1/mj/generateUpscale"
VARY = "/api/v1/mj/generateVary"

# seed 003's request example, verbatim
SPEC_GENERATE = {
    "taskType": "mj_txt2img",
    "speed": "relaxed",
    "prompt": (
        "Help me generate a sci-fi themed fighter jet in a beautiful sky, to be used as a computer wallpaper"
    ),
    "fileUrls": ["https://example.com/image.jpg"],
    "aspectRatio": "16:9",
    "version": "7",
    "variety": 10,
    "stylization": 1,
    "weirdness": 1,
    "waterMark": "",
    "callBackUrl": "https://api.example.com/callback",
    "ow": 500,
}
# spec §2.4's success record-info: the keys and types every record carries
RECORD_KEYS = {
    "taskId": str,
    "taskType": str,
    "paramJson": str,
    "finalPrompt": str,  # what the model read (docs/prompt.md, "Translation")
    "completeTime": (str, type(None)),
    "resultInfoJson": (dict, type(None)),
    "successFlag": int,
    "createTime": str,
    "errorCode": (int, type(None)),
    "errorMessage": (str, type(None)),
    # kie's newer job fields
    "state": str,
    "resultJson": (str, type(None)),
}


# --------------------------------------------------------------------------- helpers


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == 200 and body["msg"] == "success", body
    return body["data"]


def fails(r: httpx.Response, code: int) -> str:
    """A kie error: HTTP 200 with the code in the body, except 401 and 500 (spec §2.6)."""
    assert r.status_code == (code if code in (401, 500) else 200), r.text
    body = r.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == code, body
    assert body["data"] is None
    assert isinstance(body["msg"], str) and body["msg"]
    return body["msg"]


def record(client: httpx.Client, task_id: str) -> dict[str, Any]:
    data = ok(client.get(INFO, params={"taskId": task_id}))
    assert set(data) == set(RECORD_KEYS), data
    for name, types in RECORD_KEYS.items():
        assert isinstance(data[name], types), (name, data[name])
    return data


def wait_record(client: httpx.Client, task_id: str, timeout: float = 240) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        data = record(client, task_id)
        return data if data["successFlag"] != 0 else None

    data = wait_until(finished, timeout, 0.1, f"task {task_id} to finish")
    assert data["successFlag"] == 1, data
    return data


def urls_of(data: dict[str, Any]) -> list[str]:
    urls = [item["resultUrl"] for item in data["resultInfoJson"]["resultUrls"]]
    assert json.loads(data["resultJson"]) == {"resultUrls": urls}  # both forms carry the same links
    return urls


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- API only (no worker)


@pytest.fixture(scope="module")
def api_key(api_server: LiveServer) -> str:
    return api_server.create_key(credits=1000)


@pytest.fixture(scope="module")
def api(api_server: LiveServer, api_key: str) -> httpx.Client:
    return api_server.client(api_key)


def test_spec_generate_example_and_pending_record(api: httpx.Client) -> None:
    data = ok(api.post(GEN, json=SPEC_GENERATE))
    assert set(data) == {"taskId"} and isinstance(data["taskId"], str) and data["taskId"]
    rec = record(api, data["taskId"])
    assert rec["taskId"] == data["taskId"]
    assert rec["taskType"] == "mj_txt2img"
    assert json.loads(rec["paramJson"]) == SPEC_GENERATE  # the original request, as a JSON string
    assert rec["successFlag"] == 0 and rec["state"] == "waiting"
    assert rec["resultInfoJson"] is None and rec["resultJson"] is None and rec["completeTime"] is None
    assert rec["errorCode"] is None and rec["errorMessage"] is None
    assert abs(parse_iso(rec["createTime"]) - time.time()) < 120


# (what, body changes, taskType shown, stored speed, check on the stored spec)
GENERATE_CASES: list[tuple[str, dict[str, Any], str, Speed, Any]] = [
    (
        "spec fields map to prompt parameters",
        {},
        "mj_txt2img",
        Speed.RELAX,
        lambda s: (
            s["prompt"]["params"]
            == {"ar": "16:9", "chaos": 10, "stylize": 1, "weird": 1, "version": "7", "speed": "relax"}
            and not s.get("refs")
        ),  # txt2img ignores the sample's placeholder fileUrls
    ),
    (
        "img2img with fileUrls",
        {"taskType": "mj_img2img", "speed": "fast"},
        "mj_img2img",
        Speed.FAST,
        lambda s: s["refs"]["image_prompts"] == ["https://example.com/image.jpg"],
    ),
    (
        "img2img with the legacy fileUrl",
        {"taskType": "mj_img2img", "fileUrls": None, "fileUrl": "https://example.com/legacy.png"},
        "mj_img2img",
        Speed.RELAX,
        lambda s: s["refs"]["image_prompts"] == ["https://example.com/legacy.png"],
    ),
    (
        "style reference",
        {"taskType": "mj_style_reference", "speed": "turbo", "fileUrls": ["https://example.com/s.png"]},
        "mj_style_reference",
        Speed.TURBO,
        lambda s: [r["ref"] for r in s["refs"]["sref"]] == ["https://example.com/s.png"],
    ),
    (
        "omni reference with ow",
        {"taskType": "mj_omni_reference", "speed": None, "fileUrls": ["https://example.com/o.jpg"]},
        "mj_omni_reference",
        Speed.FAST,
        lambda s: s["refs"]["oref"] == "https://example.com/o.jpg" and s["refs"]["ow"] == 500,
    ),
    (
        "niji version, numeric version and watermark",
        {"version": "niji6", "waterMark": "my_watermark", "enableTranslation": True},
        "mj_txt2img",
        Speed.RELAX,
        lambda s: s["prompt"]["params"].get("niji") == "6",
    ),
    ("version as a JSON number", {"version": 6.1, "speed": "fast"}, "mj_txt2img", Speed.FAST, None),
    ("no taskType defaults to txt2img", {"taskType": None}, "mj_txt2img", Speed.RELAX, None),
    ("empty callBackUrl means none", {"callBackUrl": ""}, "mj_txt2img", Speed.RELAX, None),
]


@pytest.mark.parametrize(
    ("what", "changes", "task_type", "speed", "check"), GENERATE_CASES, ids=[c[0] for c in GENERATE_CASES]
)
def test_generate_translations(
    api_server: LiveServer,
    api: httpx.Client,
    what: str,
    changes: dict,
    task_type: str,
    speed: Speed,
    check: Any,
) -> None:
    body = {k: v for k, v in {**SPEC_GENERATE, **changes}.items() if v is not None}
    task_id = ok(api.post(GEN, json=body))["taskId"]
    rec = record(api, task_id)
    assert rec["taskType"] == task_type
    assert json.loads(rec["paramJson"]) == body
    task = stored(api_server, task_id)
    assert task.operation is Operation.IMAGINE and task.dialect == "kie" and task.speed is speed
    if body.get("callBackUrl"):
        assert task.callback_url == body["callBackUrl"]
    else:
        assert task.callback_url is None
    if check is not None:
        assert check(task.spec), task.spec
    if "waterMark" in changes:
        assert task.spec["options"]["watermark"] == "my_watermark"


BAD_GENERATE: list[tuple[str, Any, int]] = [
    ("malformed JSON", b'{"taskType": "mj_txt2img", "prompt": ', 400),
    ("not an object", b'["mj_txt2img"]', 400),
    ("empty body", b"", 400),
    ("unknown taskType", {"taskType": "mj_foo", "prompt": "a cat"}, 422),
    ("missing prompt", {"taskType": "mj_txt2img"}, 422),
    ("empty prompt", {"taskType": "mj_txt2img", "prompt": "  "}, 422),
    ("prompt of 2001 characters", {"prompt": "a" * 2001}, 422),
    ("bad speed", {"prompt": "a cat", "speed": "slow"}, 422),
    ("bad aspect ratio", {"prompt": "a cat", "aspectRatio": "wide"}, 422),
    ("stylization out of range", {"prompt": "a cat", "stylization": 5000}, 422),
    ("variety not an integer", {"prompt": "a cat", "variety": "lots"}, 422),
    ("unknown version", {"prompt": "a cat", "version": "8"}, 422),
    ("unknown prompt parameter", {"prompt": "a cat --foo 3"}, 422),
    ("img2img without an image", {"taskType": "mj_img2img", "prompt": "a cat"}, 422),
    ("style reference without an image", {"taskType": "mj_style_reference", "prompt": "a cat"}, 422),
    (
        "omni reference with two images",
        {
            "taskType": "mj_omni_reference",
            "prompt": "a cat",
            "fileUrls": ["https://a.com/1.png", "https://a.com/2.png"],
        },
        422,
    ),
    (
        "omni reference on version 6.1",
        {
            "taskType": "mj_omni_reference",
            "prompt": "a cat",
            "version": "6.1",
            "fileUrl": "https://a.com/1.png",
        },
        422,
    ),
    (
        "fileUrls not a list",
        {"taskType": "mj_img2img", "prompt": "a cat", "fileUrls": "https://a.com/1.png"},
        422,
    ),
    (
        "image on a private address",
        {"taskType": "mj_img2img", "prompt": "a cat", "fileUrls": ["https://10.0.0.1/a.png"]},
        422,
    ),
    ("callback over http", {"prompt": "a cat", "callBackUrl": "http://example.com/cb"}, 422),
    ("callback to loopback", {"prompt": "a cat", "callBackUrl": "https://127.0.0.1/cb"}, 422),
    ("callback to metadata", {"prompt": "a cat", "callBackUrl": "https://169.254.169.254/"}, 422),
    ("callback not a URL", {"prompt": "a cat", "callBackUrl": "not a url"}, 422),
    (
        "callback over 2048 characters",
        {"prompt": "a cat", "callBackUrl": "https://example.com/" + "a" * 2040},
        422,
    ),
    ("video", {"taskType": "mj_video", "prompt": "a cat", "fileUrls": ["https://a.com/1.png"]}, 505),
    ("HD video", {"taskType": "mj_video_hd", "prompt": "a cat", "motion": "low"}, 505),
]


@pytest.mark.parametrize(("what", "body", "code"), BAD_GENERATE, ids=[b[0] for b in BAD_GENERATE])
def test_bad_generate_leaves_nothing(api: httpx.Client, what: str, body: Any, code: int) -> None:
    before = balance(api), task_count(api)
    if isinstance(body, bytes):
        r = api.post(GEN, content=body, headers={"Content-Type": "application/json"})
    else:
        r = api.post(GEN, json=body)
    msg = fails(r, code)
    if "callback" in what:
        assert "callBackUrl" in msg
    assert (balance(api), task_count(api)) == before


BAD_ACTIONS: list[tuple[str, str, dict[str, Any], int]] = [
    ("upscale imageIndex 4", UPSCALE, {"taskId": "T", "imageIndex": 4}, 422),
    ("vary imageIndex negative", VARY, {"taskId": "T", "imageIndex": -1}, 422),
    ("imageIndex as a string", UPSCALE, {"taskId": "T", "imageIndex": "1"}, 422),
    ("missing imageIndex", VARY, {"taskId": "T"}, 422),
    ("missing taskId", UPSCALE, {"imageIndex": 0}, 422),
    ("unknown taskId", UPSCALE, {"taskId": "task-unified-1-nosuchid", "imageIndex": 0}, 404),
    ("unknown taskId (vary)", VARY, {"taskId": "2584469c38e43c173dcae9e60663f645", "imageIndex": 0}, 404),
    ("source not finished", VARY, {"taskId": "T", "imageIndex": 0}, 400),
    ("callback over http", UPSCALE, {"taskId": "T", "imageIndex": 0, "callBackUrl": "http://x.com/cb"}, 422),
    (
        "video extend",
        "/api/v1/mj/generateVideoExtend",
        {"taskId": "T", "index": 0, "taskType": "mj_video_extend_auto"},
        505,
    ),
]


@pytest.mark.parametrize(("what", "path", "body", "code"), BAD_ACTIONS, ids=[b[0] for b in BAD_ACTIONS])
def test_bad_actions_leave_nothing(api: httpx.Client, what: str, path: str, body: dict, code: int) -> None:
    pending = ok(api.post(GEN, json={"prompt": "a pending cat"}))["taskId"]
    body = {k: (pending if v == "T" else v) for k, v in body.items()}
    before = balance(api), task_count(api)
    fails(api.post(path, json=body), code)
    assert (balance(api), task_count(api)) == before


def test_record_info_errors(api: httpx.Client) -> None:
    assert "taskId" in fails(api.get(INFO), 422)
    assert "task-unified-1700000000-zzzzzzzz" in fails(
        api.get(INFO, params={"taskId": "task-unified-1700000000-zzzzzzzz"}), 404
    )
    fails(api.get("/api/v1/mj/nothing-here"), 404)


def test_missing_and_wrong_keys_are_http_401(api_server: LiveServer, api: httpx.Client) -> None:
    task_id = ok(api.post(GEN, json={"prompt": "a cat"}))["taskId"]
    anon = api_server.client()
    for headers in ({}, {"Authorization": "Bearer sk-nope"}, {"Authorization": "Bearer"}):
        fails(anon.post(GEN, json=SPEC_GENERATE, headers=headers), 401)
        fails(anon.get(INFO, params={"taskId": task_id}, headers=headers), 401)
        fails(anon.post(UPSCALE, json={"taskId": task_id, "imageIndex": 0}, headers=headers), 401)
        fails(anon.post("/api/v1/mj/generateVideoExtend", json={}, headers=headers), 401)


def test_insufficient_credits_is_402_and_leaves_nothing(api_server: LiveServer) -> None:
    poor = api_server.client(api_server.create_key(credits=0))
    fails(poor.post(GEN, json=SPEC_GENERATE), 402)
    assert task_count(poor) == 0 and balance(poor) == 0


def test_model_not_allowed_is_401_and_too_large_is_413(api_server: LiveServer, api: httpx.Client) -> None:
    evolink_only = api_server.client(api_server.create_key(credits=100, models=["mj-v7"]))
    assert "midjourney" in fails(evolink_only.post(GEN, json=SPEC_GENERATE), 401)
    assert task_count(evolink_only) == 0
    before = task_count(api)
    r = api.post(GEN, json={"prompt": "a" * 2_000_000})
    # the body-size guard answers before the body is read: a real 413, in kie's envelope
    assert r.status_code == 413 and r.json()["code"] == 413 and r.json()["data"] is None
    assert "too large" in r.json()["msg"]
    assert task_count(api) == before


def test_rate_limit_is_429(api_server: LiveServer) -> None:
    limited = api_server.client(api_server.create_key(credits=100, rpm=2))
    ok(limited.post(GEN, json={"prompt": "a cat"}))
    fails(limited.get(INFO, params={"taskId": "x"}), 404)
    r = limited.post(GEN, json={"prompt": "a cat"})
    fails(r, 429)
    assert int(r.headers["Retry-After"]) >= 1


def test_another_keys_task_is_404(api_server: LiveServer, api: httpx.Client) -> None:
    task_id = ok(api.post(GEN, json={"prompt": "a cat"}))["taskId"]
    other = api_server.client(api_server.create_key(credits=100))
    fails(other.get(INFO, params={"taskId": task_id}), 404)
    fails(other.post(VARY, json={"taskId": task_id, "imageIndex": 0}), 404)


def test_evolink_task_reads_through_kie_and_cancelled_is_failed(api: httpx.Client) -> None:
    body = {"model": "mj-v7", "prompt": "a lighthouse --ar 2:3"}
    created = api.post("/v1/images/generations", json=body).json()
    rec = record(api, created["id"])
    assert rec["taskType"] == "mj_txt2img" and rec["successFlag"] == 0 and rec["state"] == "waiting"
    assert json.loads(rec["paramJson"])["prompt"] == body["prompt"]
    assert api.post(f"/v1/tasks/{created['id']}/cancel").json()["status"] == "cancelled"
    rec = record(api, created["id"])
    assert rec["successFlag"] == 2 and rec["state"] == "fail"
    assert rec["errorCode"] == 400 and "cancel" in rec["errorMessage"]
    assert isinstance(rec["completeTime"], str) and rec["resultInfoJson"] is None


@pytest.mark.parametrize(
    ("code", "kie_code"),
    [("content_policy_violation", 400), ("generation_failed", 501), ("generation_timeout", 500)],
)
def test_failed_task_error_codes(api_server: LiveServer, api: httpx.Client, code: str, kie_code: int) -> None:
    task_id = ok(api.post(GEN, json={"prompt": "a cat"}))["taskId"]
    repo = api_server.runtime.repo
    api_server.call(
        repo.finish_unsuccessfully(task_id, Status.FAILED, code, f"{code} here", refund=True, outbox=None)
    )
    rec = record(api, task_id)
    assert rec["successFlag"] == 2 and rec["state"] == "fail"  # failed before it ever ran
    assert (rec["errorCode"], rec["errorMessage"]) == (kie_code, f"{code} here")
    payload = kie.callback_payload(api_server.app.state.ctx, stored(api_server, task_id), "failed")
    assert payload == {
        "code": 500,
        "msg": f"{code} here",
        "data": {"taskId": task_id, "promptJson": rec["paramJson"], "resultUrls": []},
    }


def test_success_flag_3_when_generation_failed_after_starting() -> None:
    task = Task(
        id="t", owner="k", dialect="kie", operation=Operation.IMAGINE, model="midjourney",
        status=Status.FAILED, progress=40, prompt="a", spec={}, request={}, speed=Speed.FAST,
        seed=1, created_at=1.0, started_at=2.0, finished_at=3.0, error_code="generation_failed",
    )  # fmt: skip
    assert kie.success_flag(task) == 3


# --------------------------------------------------------------------------- end to end (fake engine)


@pytest.fixture(scope="module")
def server(fake_server: LiveServer) -> LiveServer:
    """These run on the fake engine (tests/fake_engine.py): the dialect, not the pictures."""
    return fake_server


@pytest.fixture(scope="module")
def client(server: LiveServer) -> httpx.Client:
    return server.client(server.create_key(credits=10_000))


@pytest.fixture(scope="module")
def grid(client: httpx.Client) -> dict[str, Any]:
    """A 3:2 grid: V7 1344×896, so 672×448 on the 512-native tiny model."""
    body = {
        "taskType": "mj_txt2img",
        "prompt": "a harbour at dawn --seed 7",
        "aspectRatio": "3:2",
        "speed": "fast",
    }
    task_id = ok(client.post(GEN, json=body))["taskId"]
    return wait_record(client, task_id)


def test_generate_completes_with_four_result_urls(client: httpx.Client, grid: dict[str, Any]) -> None:
    assert grid["successFlag"] == 1 and grid["state"] == "success"
    assert grid["errorCode"] is None and grid["errorMessage"] is None
    urls = urls_of(grid)
    assert len(urls) == 4
    images = [image(u) for u in urls]
    assert {im.size for im in images} == {(672, 448)}
    assert len({im.tobytes() for im in images}) == 4
    assert parse_iso(grid["completeTime"]) >= parse_iso(grid["createTime"])
    exp = int(dict(p.split("=", 1) for p in urls[0].split("?")[1].split("&"))["exp"])
    assert 14 * 86400 < exp - time.time() <= 15 * 86400  # kie results live 15 days


def test_upscale_gives_one_image_at_twice_the_size(
    server: LiveServer, client: httpx.Client, grid: dict[str, Any]
) -> None:
    body = {"taskId": grid["taskId"], "imageIndex": 1, "waterMark": "openmj"}
    task_id = ok(client.post(UPSCALE, json=body))["taskId"]
    done = wait_record(client, task_id)
    assert done["taskType"] == "mj_upscale"
    assert json.loads(done["paramJson"]) == body
    urls = urls_of(done)
    assert len(urls) == 1
    assert image(urls[0]).size == (1344, 896)
    options = stored(server, task_id).spec["options"]
    assert options == {"mode": "subtle", "factor": 2, "watermark": "openmj"}  # MJ's U button, marked


def test_vary_gives_four_images_at_the_source_size(
    server: LiveServer, client: httpx.Client, grid: dict
) -> None:
    body = {
        "taskId": grid["taskId"],
        "imageIndex": 2,
        "waterMark": "",
        "callBackUrl": "https://api.example.com/cb",
    }
    task_id = ok(client.post(VARY, json=body))["taskId"]
    done = wait_record(client, task_id)
    assert done["taskType"] == "mj_vary"
    urls = urls_of(done)
    assert len(urls) == 4
    assert {image(u).size for u in urls} == {(672, 448)}
    task = stored(server, task_id)
    assert task.spec["options"]["strength"] == "strong"  # MJ's V button: Vary (Strong)
    assert task.parent_id == grid["taskId"] and task.parent_index == 2
    assert task.callback_url == "https://api.example.com/cb"


def test_kie_task_reads_through_evolink_and_callback_body(
    server: LiveServer, client: httpx.Client, grid: dict
) -> None:
    evo = client.get(f"/v1/tasks/{grid['taskId']}").json()
    assert evo["status"] == "completed" and len(evo["results"]) == 4
    payload = kie.callback_payload(server.app.state.ctx, stored(server, grid["taskId"]), "completed")
    assert payload["code"] == 200 and payload["msg"] == "success"
    assert set(payload["data"]) == {"taskId", "promptJson", "resultUrls"}
    assert payload["data"]["taskId"] == grid["taskId"]
    assert json.loads(payload["data"]["promptJson"])["prompt"] == "a harbour at dawn --seed 7"
    assert [u.split("?")[0] for u in payload["data"]["resultUrls"]] == [
        u.split("?")[0] for u in urls_of(grid)
    ]
    assert all(isinstance(u, str) for u in payload["data"]["resultUrls"])  # plain strings in callbacks
