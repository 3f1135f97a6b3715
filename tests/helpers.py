"""Client-side helpers the API tests share: submit through EvoLink's API, wait for a task, read it.

The dialect-specific ones (a kie record, an APIXO status, a midjourney-proxy fetch) stay with their
dialect's tests; they poll with `tests.live.wait_until` too.
"""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
from PIL import Image

from openmj.core.tasks import Operation, Speed, Status, Task, new_task_id
from tests.http_client import HTTP
from tests.live import LiveServer, wait_until

GEN = "/v1/images/generations"
FINISHED = ("completed", "failed", "cancelled")


def submit(client: httpx.Client, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """POST an EvoLink generation request and expect `status`."""
    r = client.post(GEN, json=body)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def create(client: httpx.Client, prompt: str, **extra: Any) -> dict[str, Any]:
    """An mj-v7 imagine of `prompt`."""
    return submit(client, {"model": "mj-v7", "prompt": prompt, **extra})


def wait_task(client: httpx.Client, task_id: str, timeout: float = 180) -> dict[str, Any]:
    """The EvoLink task object once the task has finished, whichever way."""

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        return body if body["status"] in FINISHED else None

    return wait_until(finished, timeout, 0.05, f"task {task_id} to finish")


def wait_done(client: httpx.Client, task_id: str, timeout: float = 180) -> dict[str, Any]:
    """`wait_task`, expecting it completed."""
    done = wait_task(client, task_id, timeout)
    assert done["status"] == "completed", done
    return done


def run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, wait, and expect it completed."""
    return wait_done(client, submit(client, body)["id"])


def balance(client: httpx.Client) -> float:
    """The key's remaining credits (EvoLink's /v1/credits, which every dialect's charge shows in)."""
    return client.get("/v1/credits").json()["data"]["token"]["remaining_credits"]  # type: ignore[no-any-return]


def task_count(client: httpx.Client) -> int:
    return client.get("/v1/tasks").json()["total"]  # type: ignore[no-any-return]


def stored(live: LiveServer, task_id: str) -> Task:
    """The task as the store has it."""
    task = live.call(live.runtime.repo.get_task(task_id))
    assert task is not None
    return task  # type: ignore[no-any-return]


def image(url: str) -> Image.Image:
    """A result link's picture, as RGB."""
    r = HTTP.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code)
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def pending_task(owner: str, **fields: Any) -> Task:
    """A pending EvoLink imagine of `owner`, for tests that insert tasks straight into the store;
    `fields` override any of its attributes."""
    now = fields.pop("created_at", None)
    now = time.time() if now is None else now
    base: dict[str, Any] = {
        "id": new_task_id(now),
        "owner": owner,
        "dialect": "evolink",
        "operation": Operation.IMAGINE,
        "model": "mj-v7",
        "status": Status.PENDING,
        "progress": 0,
        "prompt": "a cat",
        "spec": {},
        "request": {},
        "speed": Speed.FAST,
        "seed": 1,
        "created_at": now,
    }
    return Task(**(base | fields))
