"""What the relay tests share (tests/test_relay*.py): providers files, a gateway on loopback, a
scripted fault-injecting midjourney-proxy upstream, and the checks every scenario ends with."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from openmj.engines import build_engine
from tests.helpers import balance, submit, wait_task
from tests.http_client import HTTP
from tests.live import LiveServer, free_port, make_settings, wait_until
from tests.loopback import Handler, Loopback, Seen


def provider(
    name: str, dialect: str, url: str, key: str = "k", priority: int = 0, **extra: Any
) -> dict[str, Any]:
    fast = {"poll_s": 0.05, "timeout_s": 5, "lost_after_s": 0.3}
    return {
        "name": name,
        "dialect": dialect,
        "base_url": url,
        "key": key,
        "priority": priority,
        **fast,
        **extra,
    }


def _toml_value(v: Any) -> str:
    if isinstance(v, dict):  # an inline table; JSON's strings and numbers are TOML's too
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def toml(providers: list[dict[str, Any]]) -> str:
    out = []
    for p in providers:
        out.append("[[providers]]")
        out += [f"{k} = {_toml_value(v)}" for k, v in p.items()]
    return "\n".join(out) + "\n"


@contextmanager
def gateway(tmp: Path, providers: list[dict[str, Any]], **overrides: Any) -> Iterator[LiveServer]:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "providers.toml"
    path.write_text(toml(providers))
    settings = make_settings(tmp / "data", providers_file=path, **overrides)
    with LiveServer(settings, build_engine(settings)) as gw:
        yield gw


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


class Scripted(Loopback):
    """A midjourney-proxy upstream that answers imagine per `mode` (task ids up-1, up-2 …), serves
    its own results, and holds tasks IN_PROGRESS until `release` is set. It reads tasks one by one
    (`fetch`) and in bulk (`list-by-condition`, unless `bulk` is False), and keeps each task's
    `notifyHook`."""

    def __init__(self, mode: str, *, bulk: bool = True) -> None:
        super().__init__()
        self.mode = mode
        self.bulk = bulk
        self.release = threading.Event()
        self.count = 0
        self.hooks: dict[str, str] = {}

    def task(self, tid: str) -> dict[str, Any]:
        if self.mode == "accept_then_fail":
            return {"id": tid, "status": "FAILURE", "failReason": "account lost", "progress": ""}
        if self.mode == "slow" and not self.release.is_set():
            return {"id": tid, "status": "IN_PROGRESS", "progress": "40%"}
        where = "/gone" if self.mode == "expired" else "/img"
        urls = [{"url": self.url(f"{where}/{i}.png")} for i in range(4)]
        return {"id": tid, "status": "SUCCESS", "progress": "100%", "imageUrls": urls, "buttons": []}

    def polls_of(self, tid: str) -> int:
        """Reads of task `tid`, one by one or in a bulk read."""
        bulk = [s for s in self.hits("/mj/task/list-by-condition") if tid in json.loads(s.body)["ids"]]
        return len(self.hits(f"/mj/task/{tid}/fetch")) + len(bulk)

    def answer(self, handler: Handler, seen: Seen) -> int:
        js = "application/json"
        if seen.path == "/mj/submit/imagine":
            if self.mode == "500":
                return handler.send(500, b'{"error": "boom"}', js)
            if self.mode == "401":  # the upstream key is refused
                return handler.send(401, b'{"error": "invalid key"}', js)
            if self.mode == "429":
                return handler.send(429, b'{"error": "slow down"}', js, Retry_After="60")
            if self.mode == "malformed":
                return handler.send(200, b"<html>gateway timeout</html>", "text/html")
            if self.mode == "hang":
                time.sleep(3)  # past the provider's timeout_s
            if self.mode == "banned":
                body = {
                    "code": 24,
                    "description": "Banned prompt",
                    "result": None,
                    "properties": {"bannedWord": "x"},
                }
                return handler.send(200, json.dumps(body).encode(), js)
            with self.lock:
                self.count += 1
                n = self.count
                if hook := json.loads(seen.body).get("notifyHook"):
                    self.hooks[f"up-{n}"] = hook
            return handler.send(
                200, json.dumps({"code": 1, "description": "ok", "result": f"up-{n}"}).encode(), js
            )
        if seen.path.startswith("/mj/task/up-") and seen.path.endswith("/fetch"):
            return handler.send(200, json.dumps(self.task(seen.path.split("/")[3])).encode(), js)
        if seen.path == "/mj/task/list-by-condition" and self.bulk:
            ids = [i for i in json.loads(seen.body)["ids"] if i.startswith("up-")]
            return handler.send(200, json.dumps([self.task(i) for i in ids]).encode(), js)
        if seen.path.startswith("/img/"):
            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (10 * int(seen.path[5]), 120, 200)).save(buf, format="PNG")
            return handler.send(200, buf.getvalue(), "image/png")
        if seen.path.startswith("/gone/"):  # the upstream's signed link has expired
            return handler.send(403, b"expired", "text/plain")
        return handler.send(404, b"{}", js)


def imagine(gw: LiveServer, key: str, prompt: str = "a red fox --ar 4:3") -> dict[str, Any]:
    with gw.client(key) as c:
        return wait_task(c, submit(c, {"model": "mj-v7", "prompt": prompt})["id"], 120)


def ledger_matches(gw: LiveServer, key: str) -> None:
    """The key's ledger (grants − reservations + refunds) sums to its balance."""
    k = gw.call(gw.runtime.service.authenticate(key))
    total = gw.call(gw.runtime.repo.ledger_sum(k.id))
    with gw.client(key) as c:
        assert abs(total - balance(c)) < 1e-9, (total, balance(c))


def mj_action(c: httpx.Client, task_id: str, custom_id: str) -> str:
    out = c.post("/mj/submit/action", json={"taskId": task_id, "customId": custom_id}).json()
    assert out["code"] == 1, out
    return str(out["result"])


def mj_task(c: httpx.Client, task_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        t = c.get(f"/mj/task/{task_id}/fetch").json()
        return t if t["status"] in ("SUCCESS", "FAILURE") else None

    return wait_until(finished, 120, what=f"task {task_id}")


def clip_frames(url: str) -> tuple[int, tuple[int, int]]:
    import av

    with av.open(io.BytesIO(HTTP.get(url).content)) as box:
        frames = [f.to_image() for f in box.decode(video=0)]
    return len(frames), frames[0].size


def png_data_url(size: tuple[int, int], colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def tasks_of(live: LiveServer, key: str) -> list[Any]:
    service = live.runtime.service
    tasks, _ = live.call(service.list(live.call(service.authenticate(key)), limit=1000))
    return list(tasks)
