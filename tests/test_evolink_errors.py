"""Issue 2: every bad input answers in EvoLink's envelope, 4xx, and leaves no task and no charge."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import balance, task_count
from tests.live import LiveServer

GEN = "/v1/images/generations"


@pytest.fixture(scope="module")
def key(api_server: LiveServer) -> str:
    return api_server.create_key(credits=100)


@pytest.fixture(scope="module")
def client(api_server: LiveServer, key: str) -> httpx.Client:
    return api_server.client(key)


def assert_envelope(r: httpx.Response, status: int, etype: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str)
    if etype:
        assert err["type"] == etype
    return err


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("malformed JSON", b'{"model": "mj-v7", "prompt": ', ""),
    ("not an object", b'["mj-v7"]', ""),
    ("empty body", b"", ""),
    ("missing model", {"prompt": "a cat"}, ""),
    ("unknown model", {"model": "mj-v9", "prompt": "a cat"}, "model"),
    ("model not a string", {"model": 7, "prompt": "a cat"}, ""),
    ("missing prompt", {"model": "mj-v7"}, "prompt"),
    ("empty prompt", {"model": "mj-v7", "prompt": "   "}, "prompt"),
    ("prompt of 8193 characters", {"model": "mj-v7", "prompt": "a" * 8193}, "8192"),
    ("prompt not a string", {"model": "mj-v7", "prompt": ["a cat"]}, ""),
    ("bad speed", {"model": "mj-v7", "prompt": "a cat", "model_params": {"speed": "slow"}}, "speed"),
    ("model_params not an object", {"model": "mj-v7", "prompt": "a cat", "model_params": "fast"}, ""),
    ("bad aspect ratio", {"model": "mj-v7", "prompt": "a cat --ar 1.5:1"}, "aspect"),
    ("out of range stylize", {"model": "mj-v7", "prompt": "a cat --s 5000"}, ""),
    ("unknown parameter", {"model": "mj-v7", "prompt": "a cat --foo 3"}, "Unrecognized"),
    ("niji refused", {"model": "mj-v7", "prompt": "a cat --niji 6"}, "niji"),
    ("one image and no text", {"model": "mj-v7", "prompt": "https://example.com/a.png"}, ""),
    ("permutations fan out", {"model": "mj-v7", "prompt": "a {red, blue} cat"}, ""),
    (
        "callback over http",
        {"model": "mj-v7", "prompt": "a cat", "callback_url": "http://example.com/cb"},
        "callback",
    ),
    (
        "callback to loopback",
        {"model": "mj-v7", "prompt": "a cat", "callback_url": "https://127.0.0.1/cb"},
        "callback",
    ),
    (
        "callback to private",
        {"model": "mj-v7", "prompt": "a cat", "callback_url": "https://10.0.0.1/cb"},
        "callback",
    ),
    (
        "callback to metadata",
        {"model": "mj-v7", "prompt": "a cat", "callback_url": "https://169.254.169.254/"},
        "",
    ),
    (
        "callback over 2048 characters",
        {"model": "mj-v7", "prompt": "a cat", "callback_url": "https://example.com/" + "a" * 2040},
        "",
    ),
    ("callback not a URL", {"model": "mj-v7", "prompt": "a cat", "callback_url": "not a url"}, "callback"),
]


@pytest.mark.parametrize(("what", "body", "mentions"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_create_is_400_and_leaves_nothing(
    client: httpx.Client, what: str, body: Any, mentions: str
) -> None:
    before_balance, before_tasks = balance(client), task_count(client)
    if isinstance(body, bytes):
        r = client.post(GEN, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(GEN, json=body)
    err = assert_envelope(r, 400, "invalid_request_error")
    assert mentions.lower() in err["message"].lower() or mentions.lower() in str(err.get("param", "")).lower()
    assert balance(client) == before_balance
    assert task_count(client) == before_tasks


def test_prompt_of_8192_characters_is_accepted(client: httpx.Client) -> None:
    text = ("a quiet harbour " * 600)[:8192]
    r = client.post(GEN, json={"model": "mj-v7", "prompt": text})
    assert r.status_code == 200, r.text


def test_version_is_locked_to_7(client: httpx.Client) -> None:
    r = client.post(GEN, json={"model": "mj-v7", "prompt": "a cat --v 6.1"})
    assert r.status_code == 200, r.text


def test_missing_and_invalid_keys_are_401(api_server: LiveServer) -> None:
    anon = api_server.client()
    for headers in (
        {},
        {"Authorization": "Bearer sk-nope"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
    ):
        r = anon.post(GEN, json={"model": "mj-v7", "prompt": "a cat"}, headers=headers)
        assert_envelope(r, 401, "authentication_error")
        assert_envelope(anon.get("/v1/tasks/task-unified-1-abcdefgh", headers=headers), 401)


def test_unknown_task_is_404(client: httpx.Client) -> None:
    err = assert_envelope(client.get("/v1/tasks/task-unified-1700000000-zzzzzzzz"), 404, "not_found_error")
    assert "task-unified-1700000000-zzzzzzzz" in err["message"]


def test_body_too_large_is_413(client: httpx.Client) -> None:
    before = task_count(client)
    r = client.post(GEN, json={"model": "mj-v7", "prompt": "a" * 2_000_000})
    assert_envelope(r, 413, "request_too_large_error")
    # a chunked body with no Content-Length is measured while it streams
    chunks = iter([b'{"model":"mj-v7","prompt":"', b"a" * 1_500_000, b'"}'])
    r = client.post(GEN, content=chunks, headers={"Content-Type": "application/json"})
    assert_envelope(r, 413)
    assert task_count(client) == before


def test_batch_limits(client: httpx.Client) -> None:
    assert_envelope(client.post("/v1/tasks/batch", json={"task_ids": []}), 400)
    assert_envelope(client.post("/v1/tasks/batch", json={"task_ids": ["x"] * 51}), 400)
    assert_envelope(client.post("/v1/tasks/batch", content=b"nope"), 400)


def test_list_filters_are_validated(client: httpx.Client) -> None:
    assert_envelope(client.get("/v1/tasks", params={"status": "weird"}), 400)
    assert_envelope(client.get("/v1/tasks", params={"page": "x"}), 400)
    assert_envelope(client.get("/v1/tasks", params={"page_size": 1000}), 400)


def test_unknown_route_in_v1_is_404_envelope(client: httpx.Client) -> None:
    assert_envelope(client.get("/v1/nothing-here"), 404)


def test_credits_endpoint_shape(client: httpx.Client) -> None:
    body = client.get("/v1/credits").json()
    assert body["success"] is True
    assert set(body["data"]["user"]) == {"remaining_credits", "used_credits"}
    assert set(body["data"]["token"]) == {"remaining_credits", "used_credits", "unlimited_credits"}
