"""Bad input never hurts: each class of hostile request gets the dialect's own 4xx, leaves no task
and no charge, and nothing a client can store breaks a later read (issue 10)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from tests.images import ImageServer, png
from tests.live import LiveServer


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    body: dict[str, Any]  # a valid create body; hostile values are added to it
    stored: str  # a field the dialect stores and echoes back

    def refused(self, r: httpx.Response) -> str:
        """The dialect's own refusal of a client error; returns its message."""
        body = r.json()
        if self.name == "evolink":
            assert r.status_code == 400, r.text
            assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error"
            return str(body["error"]["message"])
        if self.name == "kie":
            assert r.status_code == 200 and set(body) == {"code", "msg", "data"}, r.text
            assert body["code"] in (400, 422) and body["data"] is None
            return str(body["msg"])
        if self.name == "apixo":
            assert r.status_code == 400 and body["code"] == 400, r.text
            return str(body["data"]["error"])
        assert r.status_code == 200 and body["code"] == 4 and body["result"] is None, r.text
        return str(body["description"])


DIALECTS = [
    Dialect("evolink", "/v1/images/generations", {"model": "mj-v7", "prompt": "a cat"}, "prompt"),
    Dialect("kie", "/api/v1/mj/generate", {"taskType": "mj_txt2img", "prompt": "a cat"}, "waterMark"),
    Dialect(
        "apixo",
        "/api/v1/generateTask/midjourney",
        {"input": {"mode": "text-to-image", "prompt": "a cat"}},
        "source",
    ),
    Dialect("mjproxy", "/mj/submit/imagine", {"prompt": "a cat"}, "state"),
]
IDS = [d.name for d in DIALECTS]


def raw_body(dialect: Dialect, field: str, literal: str) -> bytes:
    """The create body with `field` set to a raw JSON literal (which json.dumps could not write)."""
    marker = "__HOSTILE__"
    return json.dumps({**dialect.body, field: marker}).replace(f'"{marker}"', literal).encode()


#: (what, field, raw JSON literal, words the refusal must contain)
HOSTILE = [
    ("lone surrogate in a stored field", "stored", '"\\ud800"', "surrogate"),
    ("lone low surrogate", "stored", '"a\\udfffb"', "surrogate"),
    ("lone surrogate in an unknown key", "unknownField", '"\\udbff"', "surrogate"),
    ("lone surrogate in a key", "stored", '{"\\ud800": 1}', "surrogate"),
    ("NaN", "stored", "NaN", "json"),
    ("Infinity", "unknownField", "Infinity", "json"),
    ("-Infinity", "unknownField", "-Infinity", "json"),
    ("5000-digit integer", "unknownField", "1" * 5000, "json"),
    ("20-digit integer", "unknownField", "99999999999999999999", "range"),
    ("1e400", "unknownField", "1e400", "json"),
    ("nested 10000 deep", "unknownField", "[" * 10_000 + "]" * 10_000, "json"),
    ("nested 40 deep", "unknownField", "[" * 40 + "]" * 40, "nested"),
    ("NUL in a string", "stored", '"a\\u0000b"', "nul"),
]


def task_total(client: httpx.Client) -> int:
    return int(client.get("/v1/tasks").json()["total"])


def balance(client: httpx.Client) -> float:
    return float(client.get("/v1/credits").json()["data"]["user"]["remaining_credits"])


@pytest.fixture(scope="module")
def keyed(api_server: LiveServer) -> Iterator[httpx.Client]:
    with api_server.client(api_server.create_key(credits=1000)) as client:
        yield client


@pytest.mark.parametrize("dialect", DIALECTS, ids=IDS)
@pytest.mark.parametrize(("what", "field", "literal", "needle"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_json_is_refused_in_the_dialects_envelope(
    keyed: httpx.Client, dialect: Dialect, what: str, field: str, literal: str, needle: str
) -> None:
    name = dialect.stored if field == "stored" else field
    if dialect.name == "apixo" and field != "stored":
        # APIXO's fields live under "input": put the hostile value there, next to the prompt
        body = json.dumps({**dialect.body, "input": {**dialect.body["input"], name: "__H__"}})
        data = body.replace('"__H__"', literal).encode()
    else:
        data = raw_body(dialect, name, literal)
    before_tasks, before_credits = task_total(keyed), balance(keyed)
    r = keyed.post(dialect.path, content=data, headers={"Content-Type": "application/json"})
    assert needle in dialect.refused(r).lower()
    assert task_total(keyed) == before_tasks and balance(keyed) == before_credits


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tasks?page=99999999999999999999",
        "/v1/tasks?page=1000001",
        "/v1/tasks?page=-1",
        "/v1/tasks?page_size=99999999999999999999999",
        "/v1/tasks?page=1e3",
    ],
)
def test_query_parameters_are_bounded(keyed: httpx.Client, path: str) -> None:
    r = keyed.get(path)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tasks/" + "x" * 5000,
        "/mj/task/" + "x" * 5000 + "/fetch",
        "/api/v1/mj/record-info?taskId=" + "x" * 5000,
        "/api/v1/statusTask/midjourney?taskId=" + "x" * 5000,
    ],
)
def test_very_long_task_ids_are_not_found(keyed: httpx.Client, path: str) -> None:
    r = keyed.get(path)
    assert r.status_code in (200, 404), r.text
    body = r.json()
    # each dialect's own "not found": EvoLink/APIXO 404, kie code 404, midjourney-proxy null
    assert body is None or r.status_code == 404 or body.get("code") == 404, body


def _media_link(api_server: LiveServer) -> tuple[str, dict[str, str]]:
    signer = api_server.app.state.ctx.signer
    url = signer.sign("/media/task-x/0.png", 4_000_000_000, "key_abc")
    path, _, query = url.removeprefix(api_server.url).partition("?")
    return path, dict(p.split("=", 1) for p in query.split("&"))


@pytest.mark.parametrize(
    "exp",
    ["9" * 5000, "04000000000", "４０００００００００", "+4000000000", " 4000000000", "4e9", ""],
)
def test_media_expiry_must_be_plain_ascii_digits(api_server: LiveServer, exp: str) -> None:
    path, params = _media_link(api_server)
    with httpx.Client(base_url=api_server.url) as anon:
        genuine = anon.get(path, params=params)
        assert genuine.status_code == 404  # the signature is good; the file does not exist
        r = anon.get(path, params={**params, "exp": exp})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text


def test_trailing_slash_redirect_is_relative_whatever_the_host(keyed: httpx.Client) -> None:
    r = keyed.get("/v1/tasks/?page=2", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/v1/tasks?page=2"
    assert keyed.get("/v1/tasks/", follow_redirects=True).status_code == 200
    assert keyed.get("/no/such/path/").status_code == 404


def test_queue_is_paged_and_shows_more_than_a_hundred(api_server: LiveServer) -> None:
    secret = api_server.create_key(credits=10_000, concurrency=2000)
    with api_server.client(secret) as mj:
        ids = [
            mj.post("/mj/submit/imagine", json={"prompt": f"task {i}"}).json()["result"] for i in range(130)
        ]
        whole = mj.get("/mj/task/queue")
        assert whole.status_code == 200 and whole.headers["X-Total-Count"] == "130"
        assert [t["id"] for t in whole.json()] == ids  # oldest first, all of them
        pages = [mj.get("/mj/task/queue", params={"page": p, "pageSize": 50}).json() for p in (1, 2, 3)]
        assert [len(p) for p in pages] == [50, 50, 30]
        assert [t["id"] for p in pages for t in p] == ids
        bad = mj.get("/mj/task/queue", params={"pageSize": 5000})
        assert bad.status_code == 400 and bad.json()["code"] == 4


def _poison_stored_rows(api_server: LiveServer, task_ids: list[str]) -> None:
    """Rows as a server without the strict reader could have stored them: a lone surrogate."""

    async def poison() -> None:
        async with api_server.runtime.db.write() as s:
            for task_id in task_ids:
                # JSON text may carry an escaped surrogate; a plain text column cannot hold one
                request = '{"state": "bad \\ud800 state", "waterMark": "\\udc00"}'
                await s.execute(
                    text("UPDATE tasks SET request = :r WHERE id = :id"), {"r": request, "id": task_id}
                )

    api_server.call(poison())


def test_a_row_that_cannot_be_encoded_still_renders_everywhere(api_server: LiveServer) -> None:
    secret = api_server.create_key(credits=1000)
    with api_server.client(secret) as client:
        good = client.post("/mj/submit/imagine", json={"prompt": "good", "state": "fine"}).json()["result"]
        bad = client.post("/mj/submit/imagine", json={"prompt": "bad", "state": "x"}).json()["result"]
        _poison_stored_rows(api_server, [bad])
        reads = [
            client.get(f"/mj/task/{bad}/fetch"),
            client.get("/mj/task/list"),
            client.get("/mj/task/queue"),
            client.post("/mj/task/list-by-condition", json={"ids": [good, bad]}),
            client.get("/api/v1/mj/record-info", params={"taskId": bad}),
            client.get(f"/v1/tasks/{bad}"),
            client.post("/v1/tasks/batch", json={"task_ids": [good, bad]}),
            client.get("/api/v1/statusTask/midjourney", params={"taskId": bad}),
        ]
    for i, r in enumerate(reads):
        assert r.status_code == 200, (r.request.url, r.text)
        r.content.decode("utf-8")  # strict UTF-8
        assert "\\ud800" not in r.text  # scrubbed, not escaped
        if i < 5:  # the reads that echo what the client sent (state, paramJson)
            assert "\ufffd" in r.text, r.text
    listed = reads[3].json()
    assert [t["id"] for t in listed] == [good, bad] and listed[0]["state"] == "fine"


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


THIN = {"200000x1": (200_000, 1), "20000x1": (20_000, 1), "1x40000": (1, 40_000)}


def thin(size: tuple[int, int]) -> bytes:
    return png(Image.new("L", size, 200))


@pytest.mark.parametrize("shape", list(THIN))
def test_thin_images_in_the_request_are_refused_at_submit(keyed: httpx.Client, shape: str) -> None:
    uri = _data_uri(thin(THIN[shape]))
    before_tasks, before_credits = task_total(keyed), balance(keyed)
    kie = keyed.post("/api/v1/mj/generate", json={"taskType": "mj_img2img", "prompt": "x", "fileUrls": [uri]})
    assert kie.status_code == 200 and kie.json()["code"] == 422 and shape in kie.json()["msg"]
    apixo = keyed.post(
        "/api/v1/generateTask/midjourney",
        json={"input": {"mode": "image-to-image", "prompt": "x", "image_urls": [uri]}},
    )
    assert apixo.status_code == 400 and shape in apixo.json()["data"]["error"]
    mj = keyed.post("/mj/submit/imagine", json={"prompt": "x", "base64Array": [uri]})
    assert mj.status_code == 200 and mj.json()["code"] == 4 and shape in mj.json()["description"]
    blend = keyed.post("/mj/submit/blend", json={"base64Array": [uri, uri]})
    assert blend.json()["code"] == 4 and shape in blend.json()["description"]
    assert task_total(keyed) == before_tasks and balance(keyed) == before_credits


@pytest.fixture(scope="module")
def thin_images() -> Iterator[ImageServer]:
    srv = ImageServer()
    for name, size in THIN.items():
        srv.add(f"/{name}.png", thin(size))
    yield srv
    srv.close()


def _wait_final(client: httpx.Client, task_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/tasks/{task_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{task_id} did not finish in {timeout} s")


def test_thin_images_behind_urls_fail_the_task_cleanly(server: LiveServer, thin_images: ImageServer) -> None:
    with server.client(server.create_key(credits=1000)) as client:
        start = balance(client)
        urls = {name: thin_images.url(f"/{name}.png") for name in THIN}
        bodies = [
            ("/v1/images/generations", {"model": "mj-v7", "prompt": f"{urls['200000x1']} a cat"}),
            ("/v1/images/generations", {"model": "mj-v7", "prompt": f"a cat --sref {urls['1x40000']}"}),
            (
                "/api/v1/mj/generate",
                {"taskType": "mj_img2img", "prompt": "a cat", "fileUrls": [urls["20000x1"]]},
            ),
            (
                "/api/v1/generateTask/midjourney",
                {"input": {"mode": "image-to-image", "prompt": "a cat", "image_urls": [urls["1x40000"]]}},
            ),
        ]
        ids = []
        for path, body in bodies:
            r = client.post(path, json=body)
            assert r.status_code == 200, r.text
            data = r.json()
            ids.append(data.get("id") or data["data"]["taskId"])
        for task_id in ids:
            done = _wait_final(client, task_id)
            assert done["status"] == "failed" and done["error"]["code"] == "image_processing_error", done
            message = done["error"]["message"]
            assert "cannot be used" in message and ("aspect ratio" in message or "no side" in message)
            assert done["usage"]["credits_used"] == 0
        assert balance(client) == start  # every failure refunded
        assert client.get("/healthz").status_code == 200
