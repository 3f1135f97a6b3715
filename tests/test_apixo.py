"""Issue 6: the APIXO dialect (generateTask / statusTask / balance) over real HTTP (spec §3, seed 002)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openmj.core.tasks import Operation, Speed, Status, Task
from openmj.dialects import apixo, kie
from tests.helpers import image, stored, task_count
from tests.live import LiveServer, wait_until
from tests.net.net_loopback import LoopbackServer

pytestmark = pytest.mark.timeout(600)
GEN = "/api/v1/generateTask/midjourney"
STATUS = "/api/v1/statusTask/midjourney"
BALANCE = "/api/v1/apikeys/current-balance"

# the documented requests (seed 002 request body; APIXO quickstart and callback examples)
SPEC_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "seed 002 request body",
        {
            "request_type": "async",
            "callback_url": "https://...",  # the doc's placeholder: async mode ignores it
            "provider": "auto",
            "input": {"mode": "text-to-image", "version": "v7", "speed": "fast", "prompt": "..."},
        },
    ),
    (
        "quickstart async",
        {
            "request_type": "async",
            "input": {
                "mode": "text-to-image",
                "prompt": "A futuristic city at sunset",
                "aspect_ratio": "16:9",
            },
        },
    ),
    (
        "callback mode",
        {
            "request_type": "callback",
            "callback_url": "https://your-server.com/webhook/apixo",
            "input": {
                "mode": "text-to-image",
                "prompt": "A futuristic city at sunset",
                "aspect_ratio": "16:9",
            },
        },
    ),
    (
        "v1 text-to-image with every enhancement field",
        {
            "request_type": "async",
            "input": {
                "mode": "text-to-image",
                "prompt": "a serene mountain lake at dawn",
                "version": "v6.1",
                "speed": "turbo",
                "enableTranslation": False,
                "aspect": "4:3",
                "chaos": 20,
                "stylize": 250,
                "weird": 100,
            },
        },
    ),
    (
        "image-to-image",
        {
            "request_type": "async",
            "input": {
                "mode": "image-to-image",
                "prompt": "a dog lying in a park",
                "image_urls": ["https://example.com/dog.jpg"],
                "version": "v7",
                "speed": "fast",
            },
        },
    ),
]


# --------------------------------------------------------------------------- helpers


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == 200 and body["message"] == "success", body
    return body["data"]


def fails(r: httpx.Response, status: int) -> str:
    """§3.5: the real HTTP status, the same `code`, a short message and data.error."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert set(body["data"]) == {"error"} and isinstance(body["data"]["error"], str)
    return body["data"]["error"]


def status(client: httpx.Client, task_id: str) -> dict[str, Any]:
    data = ok(client.get(STATUS, params={"taskId": task_id}))
    assert data["taskId"] == task_id
    assert data["state"] in ("pending", "processing", "success", "failed")
    assert isinstance(data["createTime"], int) and data["createTime"] > 1_700_000_000_000  # Unix ms
    expected = {"taskId", "state", "createTime"}
    if "finalPrompt" in data:  # a task with a prompt shows what the model read
        assert isinstance(data["finalPrompt"], str) and data["finalPrompt"]
        expected.add("finalPrompt")
    if data["state"] == "success":
        expected |= {"resultJson", "completeTime", "costTime"}
    elif data["state"] == "failed":
        expected |= {"failCode", "failMsg", "completeTime"}
    assert set(data) == expected, data
    return data


def wait_status(client: httpx.Client, task_id: str, state: str = "success", timeout: float = 300) -> dict:
    def finished() -> dict[str, Any] | None:
        data = status(client, task_id)
        return data if data["state"] in ("success", "failed") else None

    data = wait_until(finished, timeout, 0.1, f"task {task_id} to finish")
    assert data["state"] == state, data
    return data


def result_urls(data: dict[str, Any]) -> list[str]:
    assert isinstance(data["resultJson"], str)  # a JSON string, not an object (§3.3)
    parsed = json.loads(data["resultJson"])
    assert set(parsed) == {"resultUrls"}
    return parsed["resultUrls"]


def submit(client: httpx.Client, inp: dict[str, Any], **outer: Any) -> str:
    data = ok(client.post(GEN, json={"request_type": "async", **outer, "input": inp}))
    assert set(data) == {"taskId"} and isinstance(data["taskId"], str)
    return data["taskId"]


def balance(client: httpx.Client) -> float:
    return ok(client.get(BALANCE))["balance"]


# --------------------------------------------------------------------------- API only (no worker)


@pytest.fixture(scope="module")
def api(api_server: LiveServer) -> httpx.Client:
    return api_server.client(api_server.create_key(credits=1000))


@pytest.mark.parametrize(("what", "body"), SPEC_REQUESTS, ids=[s[0] for s in SPEC_REQUESTS])
def test_spec_requests_and_pending_status(
    api_server: LiveServer, api: httpx.Client, what: str, body: dict
) -> None:
    data = ok(api.post(GEN, json=body))
    assert set(data) == {"taskId"}
    st = status(api, data["taskId"])
    prompt = body["input"].get("prompt") or ""
    assert st["state"] == "pending"
    assert set(st) == {"taskId", "state", "createTime"} | ({"finalPrompt"} if prompt else set())
    assert st.get("finalPrompt", "") == prompt  # not translated: the model reads what was sent
    assert abs(st["createTime"] / 1000 - time.time()) < 120
    task = stored(api_server, data["taskId"])
    assert task.dialect == "apixo" and task.model == "midjourney" and task.request == body
    assert task.callback_url == (body["callback_url"] if body["request_type"] == "callback" else None)


# (what, input, stored speed, expected prompt params, expected effective model)
TRANSLATIONS: list[tuple[str, dict[str, Any], Speed, dict[str, Any], str]] = [
    ("defaults: v6.1, fast", {"prompt": "a cat"}, Speed.FAST, {}, "6.1"),
    (
        "v1 field names",
        {"prompt": "a cat", "aspect": "16:9", "chaos": 10, "stylize": 200, "weird": 5},
        Speed.FAST,
        {"ar": "16:9", "chaos": 10, "stylize": 200, "weird": 5},
        "6.1",
    ),
    (
        "v2/v3 field names",
        {"prompt": "a cat", "aspect_ratio": "2:3", "variety": 30, "stylization": 50, "weirdness": 300},
        Speed.FAST,
        {"ar": "2:3", "chaos": 30, "stylize": 50, "weird": 300},
        "6.1",
    ),
    (
        "both generations: the newer name wins",
        {"prompt": "a cat", "aspect": "1:1", "aspect_ratio": "3:2", "chaos": 1, "variety": 2},
        Speed.FAST,
        {"ar": "3:2", "chaos": 2},
        "6.1",
    ),
    ("text from the first -- is dropped", {"prompt": "a cat --ar 3:2 --s 900"}, Speed.FAST, {}, "6.1"),
    (
        "v7 draft",
        {"prompt": "a cat", "version": "v7", "speed": "draft"},
        Speed.DRAFT,
        {"version": "7", "draft": True},
        "7",
    ),
    ("v6", {"prompt": "a cat", "version": "v6"}, Speed.FAST, {"version": "6"}, "6"),
    ("7 without the v", {"prompt": "a cat", "version": "7"}, Speed.FAST, {"version": "7"}, "7"),
    ("niji 6", {"prompt": "a cat", "version": "niji 6"}, Speed.FAST, {"niji": "6"}, "niji 6"),
    (
        "niji 7 turbo",
        {"prompt": "a cat", "version": "niji 7", "speed": "turbo"},
        Speed.TURBO,
        {"niji": "7", "speed": "turbo"},
        "niji 7",
    ),
    ("relaxed runs as fast", {"prompt": "a cat", "speed": "relaxed"}, Speed.FAST, {"speed": "fast"}, "6.1"),
]


@pytest.mark.parametrize(
    ("what", "inp", "speed", "params", "model"), TRANSLATIONS, ids=[t[0] for t in TRANSLATIONS]
)
def test_text_to_image_translations(
    api_server: LiveServer, api: httpx.Client, what: str, inp: dict, speed: Speed, params: dict, model: str
) -> None:
    task = stored(api_server, submit(api, {"mode": "text-to-image", **inp}))
    assert task.operation is Operation.IMAGINE and task.speed is speed
    got = dict(task.spec["prompt"]["params"])
    if "speed" not in params:
        got.pop("speed", None)  # the speed flag the field adds, checked where the case names it
    assert got == params
    assert task.spec["prompt"]["effective_model"] == model
    assert task.spec["prompt"]["text"] == "a cat"


def test_image_prompts(api_server: LiveServer, api: httpx.Client) -> None:
    urls = [f"https://example.com/{i}.png" for i in range(20)]
    t2i = stored(api_server, submit(api, {"mode": "text-to-image", "prompt": "a cat", "image_urls": urls}))
    assert t2i.spec["refs"]["image_prompts"] == urls  # v3: up to 20 image prompts
    i2i = stored(
        api_server, submit(api, {"mode": "image-to-image", "prompt": "a cat", "image_urls": urls[:1]})
    )
    assert i2i.operation is Operation.IMAGINE and i2i.spec["refs"]["image_prompts"] == urls[:1]


BAD: list[tuple[str, Any, int, str]] = [
    ("malformed JSON", b'{"input": {"mode": ', 400, "JSON"),
    ("not an object", b"[1]", 400, "object"),
    ("empty body", b"", 400, "empty"),
    ("missing input", {"request_type": "async"}, 400, "input"),
    ("input not an object", {"input": "text-to-image"}, 400, "input"),
    ("missing mode", {"input": {"prompt": "a cat"}}, 400, "mode"),
    ("unknown mode", {"input": {"mode": "outpaint", "prompt": "a cat"}}, 400, "mode"),
    ("missing prompt", {"input": {"mode": "text-to-image"}}, 400, "Missing required field: input.prompt"),
    ("empty prompt", {"input": {"mode": "text-to-image", "prompt": " "}}, 400, "input.prompt"),
    (
        "only parameters in the prompt",
        {"input": {"mode": "text-to-image", "prompt": "--ar 3:2"}},
        400,
        "empty",
    ),
    ("prompt of 2001 characters", {"input": {"mode": "text-to-image", "prompt": "a" * 2001}}, 400, "prompt"),
    ("unknown version", {"input": {"mode": "text-to-image", "prompt": "a", "version": "v9"}}, 400, "version"),
    ("unknown speed", {"input": {"mode": "text-to-image", "prompt": "a", "speed": "slow"}}, 400, "speed"),
    ("draft on v6.1", {"input": {"mode": "text-to-image", "prompt": "a", "speed": "draft"}}, 400, "draft"),
    (
        "stylize out of range",
        {"input": {"mode": "text-to-image", "prompt": "a", "stylize": 5000}},
        400,
        "stylize",
    ),
    (
        "chaos not an integer",
        {"input": {"mode": "text-to-image", "prompt": "a", "variety": "x"}},
        400,
        "chaos",
    ),
    (
        "bad aspect",
        {"input": {"mode": "text-to-image", "prompt": "a", "aspect_ratio": "wide"}},
        400,
        "aspect",
    ),
    (
        "image-to-image without images",
        {"input": {"mode": "image-to-image", "prompt": "a"}},
        400,
        "image_urls",
    ),
    (
        "21 image prompts",
        {"input": {"mode": "text-to-image", "prompt": "a", "image_urls": ["https://a.com/x.png"] * 21}},
        400,
        "image_urls",
    ),
    (
        "image_urls not a list",
        {"input": {"mode": "image-to-image", "prompt": "a", "image_urls": "x"}},
        400,
        "",
    ),
    (
        "image on a private address",
        {"input": {"mode": "image-to-image", "prompt": "a", "image_urls": ["https://192.168.1.2/a.png"]}},
        400,
        "192.168.1.2",
    ),
    ("upload-paint without an image", {"input": {"mode": "upload-paint", "prompt": "a"}}, 400, "image_urls"),
    (
        "upload-paint with two images",
        {"input": {"mode": "upload-paint", "prompt": "a", "image_urls": ["https://a.com/1.png"] * 2}},
        400,
        "exactly 1",
    ),
    ("image-edit with nothing to edit", {"input": {"mode": "image-edit", "prompt": "a"}}, 400, "image_urls"),
    (
        "unknown request_type",
        {"request_type": "sync", "input": {"mode": "text-to-image", "prompt": "a"}},
        400,
        "",
    ),
    (
        "unknown provider",
        {"provider": "cheap", "input": {"mode": "text-to-image", "prompt": "a"}},
        400,
        "provider",
    ),
    (
        "callback mode without a URL",
        {"request_type": "callback", "input": {"mode": "text-to-image", "prompt": "a"}},
        400,
        "callback_url is required",
    ),
    (
        "callback over http",
        {
            "request_type": "callback",
            "callback_url": "http://example.com/cb",
            "input": {"mode": "text-to-image", "prompt": "a"},
        },
        400,
        "callback_url",
    ),
    (
        "callback to loopback",
        {
            "request_type": "callback",
            "callback_url": "https://127.0.0.1/cb",
            "input": {"mode": "text-to-image", "prompt": "a"},
        },
        400,
        "callback_url",
    ),
    (
        "callback over 2048 characters",
        {
            "request_type": "callback",
            "callback_url": "https://example.com/" + "a" * 2040,
            "input": {"mode": "text-to-image", "prompt": "a"},
        },
        400,
        "callback_url",
    ),
    ("vary without taskId", {"input": {"mode": "vary", "imageIndex": 0}}, 400, "taskId"),
    (
        "upscale imageIndex 4",
        {"input": {"mode": "upscale", "taskId": "T", "imageIndex": 4}},
        400,
        "imageIndex",
    ),
    ("upscale type 4", {"input": {"mode": "upscale", "taskId": "T", "type": 4}}, 400, "type"),
    ("vary type 2", {"input": {"mode": "vary", "taskId": "T", "type": 2}}, 400, "type"),
    ("draft on an upscale", {"input": {"mode": "upscale", "taskId": "T", "speed": "draft"}}, 400, "speed"),
    ("source not finished", {"input": {"mode": "vary", "taskId": "T", "imageIndex": 0}}, 400, "completed"),
    (
        "unknown source task",
        {"input": {"mode": "upscale", "taskId": "task-unified-1-nosuchid"}},
        404,
        "not found",
    ),
    (
        "reroll of an unknown task",
        {"input": {"mode": "reroll", "taskId": "task_abc123xyz789"}},
        404,
        "not found",
    ),
]


@pytest.mark.parametrize(("what", "body", "code", "mentions"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_leave_nothing(
    api: httpx.Client, what: str, body: Any, code: int, mentions: str
) -> None:
    inp = body.get("input") if isinstance(body, dict) else None
    if isinstance(inp, dict) and inp.get("taskId") == "T":  # a real task that has not finished
        body = {**body, "input": {**inp, "taskId": submit(api, {"mode": "text-to-image", "prompt": "p"})}}
    before = balance(api), task_count(api)
    if isinstance(body, bytes):
        r = api.post(GEN, content=body, headers={"Content-Type": "application/json"})
    else:
        r = api.post(GEN, json=body)
    error = fails(r, code)
    assert mentions.lower() in error.lower(), error
    assert (balance(api), task_count(api)) == before


def test_unknown_model_and_task_are_404(api: httpx.Client) -> None:
    before = task_count(api)
    assert "flux-2" in fails(
        api.post("/api/v1/generateTask/flux-2", json={"input": {"mode": "text-to-image"}}), 404
    )
    assert task_count(api) == before
    fails(api.get(STATUS, params={"taskId": "task_abc123xyz789"}), 404)
    fails(api.get("/api/v1/statusTask/sora-2", params={"taskId": "task_abc123xyz789"}), 404)
    assert "taskId" in fails(api.get(STATUS), 400)
    fails(api.get("/api/v1/nothing-here"), 404)


def test_missing_and_wrong_keys_are_401(api_server: LiveServer) -> None:
    anon = api_server.client()
    body = SPEC_REQUESTS[1][1]
    for headers in ({}, {"Authorization": "Bearer sk-nope"}, {"Authorization": "Bearer"}):
        fails(anon.post(GEN, json=body, headers=headers), 401)
        fails(anon.get(STATUS, params={"taskId": "task_abc123xyz789"}, headers=headers), 401)
        fails(anon.get(BALANCE, headers=headers), 401)


def test_insufficient_credits_is_402_and_leaves_nothing(api_server: LiveServer) -> None:
    poor = api_server.client(api_server.create_key(credits=0))
    fails(poor.post(GEN, json=SPEC_REQUESTS[1][1]), 402)
    assert balance(poor) == 0 and task_count(poor) == 0


def test_rate_limit_is_429(api_server: LiveServer) -> None:
    limited = api_server.client(api_server.create_key(credits=100, rpm=2))
    ok(limited.get(BALANCE))
    ok(limited.get(BALANCE))
    r = limited.post(GEN, json=SPEC_REQUESTS[1][1])
    fails(r, 429)
    assert int(r.headers["Retry-After"]) >= 1


def test_model_not_allowed_is_403_and_too_large_is_413(api_server: LiveServer, api: httpx.Client) -> None:
    evolink_only = api_server.client(api_server.create_key(credits=100, models=["mj-v7"]))
    assert "midjourney" in fails(evolink_only.post(GEN, json=SPEC_REQUESTS[1][1]), 403)
    assert task_count(evolink_only) == 0
    before = task_count(api)
    big = {"input": {"mode": "text-to-image", "prompt": "a" * 2_000_000}}
    assert "too large" in fails(api.post(GEN, json=big), 413)
    assert task_count(api) == before


def test_balance_shape_and_charge(api_server: LiveServer) -> None:
    client = api_server.client(api_server.create_key(credits=100))
    data = ok(client.get(BALANCE))
    assert data == {"balance": 100, "usedBalance": 0, "unit": "credits"}
    submit(client, {"mode": "text-to-image", "prompt": "a cat", "speed": "turbo"})
    after = ok(client.get(BALANCE))
    assert after["balance"] < 100
    assert client.get("/v1/credits").json()["data"]["token"]["remaining_credits"] == after["balance"]


def test_another_keys_task_is_404(api_server: LiveServer, api: httpx.Client) -> None:
    task_id = submit(api, {"mode": "text-to-image", "prompt": "a cat"})
    other = api_server.client(api_server.create_key(credits=100))
    fails(other.get(STATUS, params={"taskId": task_id}), 404)
    fails(other.post(GEN, json={"input": {"mode": "upscale", "taskId": task_id}}), 404)


def test_evolink_task_reads_through_apixo_and_cancelled_is_failed(api: httpx.Client) -> None:
    created = api.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a lighthouse"}).json()
    st = status(api, created["id"])
    assert st["state"] == "pending" and abs(st["createTime"] / 1000 - created["created"]) < 2
    assert api.post(f"/v1/tasks/{created['id']}/cancel").json()["status"] == "cancelled"
    st = status(api, created["id"])
    assert st["state"] == "failed" and st["failCode"] == "GENERATION_FAILED" and "cancel" in st["failMsg"]
    assert st["completeTime"] >= st["createTime"]


@pytest.mark.parametrize(
    ("code", "fail_code"),
    [
        ("content_policy_violation", "CONTENT_VIOLATION"),
        ("image_too_large", "IMAGE_TOO_LARGE"),
        ("unsupported_format", "UNSUPPORTED_FORMAT"),
        ("invalid_image_url", "INVALID_IMAGE_URL"),
        ("image_processing_error", "IMAGE_DOWNLOAD_FAILED"),
        ("generation_timeout", "PROCESSING_TIMEOUT"),
        ("generation_failed", "GENERATION_FAILED"),
        ("service_error", "GENERATION_FAILED"),
    ],
)
def test_fail_codes(api_server: LiveServer, api: httpx.Client, code: str, fail_code: str) -> None:
    task_id = submit(api, {"mode": "text-to-image", "prompt": "a cat"})
    repo = api_server.runtime.repo
    api_server.call(
        repo.finish_unsuccessfully(task_id, Status.FAILED, code, "why it failed", refund=True, outbox=None)
    )
    r = api.get(STATUS, params={"taskId": task_id})
    assert r.status_code == 200 and r.json()["code"] == 200  # a failed task is still a successful query
    st = status(api, task_id)
    assert (st["state"], st["failCode"], st["failMsg"]) == ("failed", fail_code, "why it failed")
    payload = apixo.callback_payload(api_server.app.state.ctx, stored(api_server, task_id), "failed")
    assert payload == r.json()  # the webhook body is the status envelope (§3.4)


def test_processing_state_renders_without_times() -> None:
    task = Task(
        id="t", owner="k", dialect="apixo", operation=Operation.IMAGINE, model="midjourney",
        status=Status.PROCESSING, progress=40, prompt="a", spec={}, request={}, speed=Speed.FAST,
        seed=1, created_at=1704067200.0, started_at=1704067201.0,
    )  # fmt: skip
    assert apixo.render_status(None, task) == {  # type: ignore[arg-type]
        "taskId": "t",
        "state": "processing",
        "createTime": 1704067200000,
        "finalPrompt": "a",
    }


# --------------------------------------------------------------------------- end to end (fake engine)


@pytest.fixture(scope="module")
def server(fake_server: LiveServer) -> LiveServer:
    """These run on the fake engine (tests/fake_engine.py): the dialect, not the pictures."""
    return fake_server


@pytest.fixture(scope="module")
def images() -> Iterator[LoopbackServer]:
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> httpx.Client:
    return server.client(server.create_key(credits=10_000))


@pytest.fixture(scope="module")
def grid(client: httpx.Client) -> dict[str, Any]:
    """The seed's recommended workflow starts with a text-to-image of 4. A v7 draft keeps the
    CPU bill small: 256² on the 512-native tiny model, so even the 4× upscale is only 1024²."""
    inp = {"mode": "text-to-image", "prompt": "a red fox in snow", "version": "v7", "speed": "draft"}
    return wait_status(client, submit(client, {**inp, "stylization": 100}))


def test_generate_then_status_success(client: httpx.Client, grid: dict[str, Any]) -> None:
    urls = result_urls(grid)
    assert len(urls) == 4
    assert {image(u).size for u in urls} == {(256, 256)}
    assert isinstance(grid["completeTime"], int) and isinstance(grid["costTime"], int)
    assert grid["costTime"] == grid["completeTime"] - grid["createTime"] > 0
    exp = int(dict(p.split("=", 1) for p in urls[0].split("?")[1].split("&"))["exp"])
    assert 14 * 86400 < exp - time.time() <= 15 * 86400  # seed 002: result URLs are valid for 15 days


@pytest.mark.parametrize(("kind", "size"), [(0, (512, 512)), (3, (1024, 1024))])
def test_upscale_types(server: LiveServer, client: httpx.Client, grid: dict, kind: int, size: tuple) -> None:
    task_id = submit(client, {"mode": "upscale", "taskId": grid["taskId"], "imageIndex": 2, "type": kind})
    done = wait_status(client, task_id)
    urls = result_urls(done)
    assert len(urls) == 1
    assert image(urls[0]).size == size
    assert stored(server, task_id).spec["options"] == apixo.UPSCALE_TYPES[kind]


def test_enhance_the_draft(client: httpx.Client, grid: dict[str, Any]) -> None:
    enhanced = wait_status(
        client, submit(client, {"mode": "enhance", "taskId": grid["taskId"], "imageIndex": 1})
    )
    urls = result_urls(enhanced)
    assert len(urls) == 1 and image(urls[0]).size == (512, 512)  # one image at full size


def test_status_callback_body_matches_the_status_envelope(
    server: LiveServer, client: httpx.Client, grid: dict
) -> None:
    r = client.get(STATUS, params={"taskId": grid["taskId"]})
    payload = apixo.callback_payload(server.app.state.ctx, stored(server, grid["taskId"]), "completed")
    assert payload == r.json()
    # the same task through the other dialects
    assert client.get(f"/v1/tasks/{grid['taskId']}").json()["status"] == "completed"
    rec = client.get("/api/v1/mj/record-info", params={"taskId": grid["taskId"]}).json()["data"]
    assert rec["successFlag"] == 1 and len(rec["resultInfoJson"]["resultUrls"]) == 4


def test_evolink_task_reads_through_apixo_and_kie(server: LiveServer, client: httpx.Client) -> None:
    body = {"model": "mj-v7", "prompt": "a small boat --seed 3", "model_params": {"speed": "draft"}}
    created = client.post("/v1/images/generations", json=body).json()
    done = wait_status(client, created["id"])
    assert [image(u).size for u in result_urls(done)] == [(256, 256)] * 4
    evo = client.get(f"/v1/tasks/{created['id']}").json()
    assert result_urls(done) == evo["results"]
    rec = client.get("/api/v1/mj/record-info", params={"taskId": created["id"]}).json()["data"]
    assert rec["successFlag"] == 1 and rec["taskType"] == "mj_txt2img"
    assert [u["resultUrl"] for u in rec["resultInfoJson"]["resultUrls"]] == evo["results"]
    assert json.loads(rec["paramJson"]) == body
    assert (
        kie.callback_payload(server.app.state.ctx, stored(server, created["id"]), "completed")["code"] == 200
    )


def _submit_and_cancel(server: LiveServer, client: httpx.Client, inp: dict[str, Any]) -> Task:
    """Check the translation without paying for a generation: submit, read the stored task, cancel."""
    task_id = submit(client, inp)
    task = stored(server, task_id)
    r = client.post(f"/v1/tasks/{task_id}/cancel")
    assert r.status_code in (200, 400), r.text  # 400: it already finished, which is fine too
    return task


@pytest.mark.parametrize(
    ("inp", "operation", "params", "index"),
    [
        ({"mode": "vary", "imageIndex": 3}, Operation.VARIATION, {"strength": "strong"}, 3),
        ({"mode": "vary", "imageIndex": 1, "type": 0}, Operation.VARIATION, {"strength": "subtle"}, 1),
        (
            {"mode": "vary", "type": "strong", "prompt": "at night"},
            Operation.VARIATION,
            {"strength": "strong"},
            0,
        ),
        ({"mode": "reroll"}, Operation.REROLL, {}, None),
        (
            {"mode": "upscale", "image_index": 2, "type": "1"},
            Operation.UPSCALE,
            {"mode": "creative", "factor": 2},
            2,
        ),
    ],
    ids=["vary default strong", "vary type 0 subtle", "vary remix", "reroll", "upscale creative"],
)
def test_action_translations(
    server: LiveServer,
    client: httpx.Client,
    grid: dict,
    inp: dict,
    operation: Operation,
    params: dict,
    index: Any,
) -> None:
    task = _submit_and_cancel(server, client, {**inp, "taskId": grid["taskId"]})
    assert task.operation is operation and task.parent_id == grid["taskId"] and task.parent_index == index
    assert {k: task.spec["options"][k] for k in params} == params
    if "prompt" in inp:
        assert task.spec["prompt"]["text"] == "at night" and task.spec["options"]["remix"] is True


def test_image_edit_on_a_finished_task_is_an_edit(
    server: LiveServer, client: httpx.Client, grid: dict
) -> None:
    inp = {
        "mode": "image-edit",
        "taskId": grid["taskId"],
        "imageIndex": 1,
        "prompt": "a fox wearing a scarf",
        "canvas": {"width": 384, "height": 256},
        "imgPos": {"width": 256, "height": 256, "x": 64, "y": 0},
    }
    task = _submit_and_cancel(server, client, inp)
    assert task.operation is Operation.EDIT and task.parent_index == 1
    assert task.spec["options"]["canvas"] == {"width": 384, "height": 256}
    assert task.spec["options"]["img_pos"] == {"width": 256, "height": 256, "x": 64, "y": 0}


@pytest.mark.parametrize("mode", ["upload-paint", "image-edit"])
def test_upload_paint_and_image_edit_of_an_upload(
    server: LiveServer, client: httpx.Client, images: LoopbackServer, mode: str
) -> None:
    mask = {"areas": [{"width": 64, "height": 48, "points": [0, 0, 32, 0, 32, 24, 0, 24]}]}
    inp = {
        "mode": mode,
        "prompt": "a red square",
        "image_urls": [images.url("/png")],
        "canvas": {"width": 64, "height": 48},
        "img_pos": {"width": 64, "height": 48, "x": 0, "y": 0},
        "mask": mask,
    }
    task = _submit_and_cancel(server, client, inp)
    assert task.operation is Operation.UPLOAD_PAINT
    assert task.spec["options"]["image_url"] == images.url("/png")
    assert task.spec["options"]["mask"]["areas"][0]["width"] == 64


def test_an_unreadable_image_fails_the_task_with_a_fail_code(
    client: httpx.Client, images: LoopbackServer
) -> None:
    task_id = submit(
        client, {"mode": "image-to-image", "prompt": "a cat", "image_urls": [images.url("/text")]}
    )
    st = wait_status(client, task_id, state="failed")
    assert st["failCode"] in ("UNSUPPORTED_FORMAT", "INVALID_IMAGE_URL")
    assert st["failMsg"] and st["completeTime"] >= st["createTime"]
