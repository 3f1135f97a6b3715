"""Issue 7: callbacks end to end — a real server posts to a loopback receiver in each dialect's shape."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openmj.callbacks import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from tests.live import LiveServer

pytestmark = pytest.mark.timeout(300)


class Receiver:
    """Answers 500 to the first `failures` posts of each path, then 200; records everything."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                n = outer.counts.get(self.path, 0)
                outer.counts[self.path] = n + 1
                status = 500 if n < outer.failures else 200
                outer.calls.append(
                    {
                        "t": time.time(),
                        "path": self.path,
                        "body": body,
                        "headers": dict(self.headers),
                        "status": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def on(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]

    def wait(self, path: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.on(path)) < count:
            time.sleep(0.05)
        return self.on(path)


@pytest.fixture(scope="module")
def flaky() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.httpd.shutdown()


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_key(credits=10_000)


def secret(server: LiveServer) -> bytes:
    return server.settings.resolved_callback_secret()


def test_evolink_callback_retries_after_1s_then_2s_and_carries_the_task(
    server: LiveServer, key: str, flaky: Receiver
) -> None:
    c = server.client(key)
    url = flaky.url("/evolink")
    task = c.post(
        "/v1/images/generations", json={"model": "mj-v7", "prompt": "a kite --seed 4", "callback_url": url}
    ).json()
    calls = flaky.wait("/evolink", 3)
    assert [x["status"] for x in calls] == [500, 500, 200]
    gaps = [calls[i + 1]["t"] - calls[i]["t"] for i in range(2)]
    assert 0.8 < gaps[0] < 1.9 and 1.8 < gaps[1] < 3.2, gaps
    body = json.loads(calls[-1]["body"])
    detail = c.get(f"/v1/tasks/{task['id']}").json()
    assert body["id"] == task["id"] and body["status"] == "completed"
    assert body["results"] == detail["results"] and len(body["results"]) == 4
    for call in calls:
        assert verify(secret(server), call["headers"][SIGNATURE_HEADER], call["body"])
    assert len({call["headers"][DELIVERY_HEADER] for call in calls}) == 1  # one delivery, retried
    time.sleep(1)
    assert len(flaky.on("/evolink")) == 3  # delivered: no more posts


def test_a_tampered_body_does_not_verify(server: LiveServer, flaky: Receiver) -> None:
    call = flaky.on("/evolink")[-1]
    assert not verify(secret(server), call["headers"][SIGNATURE_HEADER], call["body"] + b" ")
    assert not verify(b"another secret", call["headers"][SIGNATURE_HEADER], call["body"])


def test_kie_callback_shape(server: LiveServer, key: str) -> None:
    receiver = Receiver()
    c = server.client(key)
    r = c.post(
        "/api/v1/mj/generate",
        json={"taskType": "mj_txt2img", "prompt": "a kite --seed 4", "callBackUrl": receiver.url("/kie")},
    ).json()
    body = json.loads(receiver.wait("/kie", 1)[0]["body"])
    assert body["code"] == 200 and body["msg"] == "success"
    assert body["data"]["taskId"] == r["data"]["taskId"]
    assert isinstance(body["data"]["resultUrls"], list) and len(body["data"]["resultUrls"]) == 4
    assert all(isinstance(u, str) for u in body["data"]["resultUrls"])
    receiver.httpd.shutdown()


def test_apixo_callback_is_the_status_envelope(server: LiveServer, key: str) -> None:
    receiver = Receiver()
    c = server.client(key)
    r = c.post(
        "/api/v1/generateTask/midjourney",
        json={
            "request_type": "callback",
            "callback_url": receiver.url("/apixo"),
            "input": {"mode": "text-to-image", "prompt": "a kite", "speed": "fast"},
        },
    ).json()
    body = json.loads(receiver.wait("/apixo", 1)[0]["body"])
    status = c.get("/api/v1/statusTask/midjourney", params={"taskId": r["data"]["taskId"]}).json()
    assert body == status
    assert body["data"]["state"] == "success" and isinstance(body["data"]["resultJson"], str)
    receiver.httpd.shutdown()


def test_mjproxy_notify_hook_on_every_change_without_retry(server: LiveServer, key: str) -> None:
    receiver = Receiver(failures=100)  # always fails: midjourney-proxy never retries
    c = server.client(key)
    r = c.post(
        "/mj/submit/imagine",
        json={"prompt": "a kite --seed 4", "notifyHook": receiver.url("/mj"), "state": "abc"},
    ).json()
    assert r["code"] == 1
    deadline = time.time() + 60
    while time.time() < deadline and c.get(f"/mj/task/{r['result']}/fetch").json()["status"] != "SUCCESS":
        time.sleep(0.1)
    time.sleep(1.5)
    bodies = [json.loads(x["body"]) for x in receiver.on("/mj")]
    assert bodies[-1]["status"] == "SUCCESS" and bodies[-1]["state"] == "abc"
    assert bodies[-1]["id"] == r["result"]
    assert any(b["status"] == "IN_PROGRESS" for b in bodies)
    progress = [int(b["progress"].rstrip("%")) for b in bodies if b["progress"]]
    assert progress == sorted(progress)
    # every body was posted once: no retry of a failed notify
    assert len({x["headers"][DELIVERY_HEADER] for x in receiver.on("/mj")}) == len(receiver.on("/mj"))
    receiver.httpd.shutdown()


def test_callback_secret_command_prints_the_signing_key(server: LiveServer) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "openmj.cli", "callback-secret", "--data-dir", str(server.settings.data_dir)],
        capture_output=True,
        text=True,
        env={"OPENMJ_SECRET_KEY": "test-secret-key", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip().encode() == secret(server)
