"""`Client`: the blocking client (httpx). Every call goes through `_call`, which retries."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from openmj.client import bodies
from openmj.client.bodies import Call, Direction, Mask, Motion, Quality, Speed
from openmj.client.errors import APIConnectionError
from openmj.client.tasks import Balance, Task, TaskPage
from openmj.client.transport import (
    OnRetry,
    RetryEvent,
    RetryPolicy,
    api_error,
    decode,
    retry_after,
    retryable_exception,
    retryable_status,
    submitted_id,
)
from openmj.client.waiting import OnProgress, TaskRef, Watch, downloads, outcome, task_id, write_file
from openmj.client.wiring import connection


class Client:
    """openmj (or EvoLink itself) over its EvoLink API.

    `api_key` and `base_url` default to OPENMJ_API_KEY and OPENMJ_BASE_URL (then
    http://127.0.0.1:8000). `image_number` is 0-based, as EvoLink's field (0 is U1/V1).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url, self._headers = connection(api_key, base_url)
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # ------------------------------------------------------------------ HTTP with retries
    def _send(self, call: Call, url: str, headers: dict[str, str], *, follow: bool = False) -> httpx.Response:
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    call.method,
                    url,
                    json=call.json,
                    params=call.params,
                    headers=headers,
                    follow_redirects=follow,
                )
            except httpx.TransportError as exc:
                if not retryable_exception(call, exc):
                    raise APIConnectionError(f"{call.method} {url}: {type(exc).__name__}: {exc}") from exc
                delay = self.retry.delay(attempt, None, waited)
                if delay is None:
                    raise APIConnectionError(f"{call.method} {url}: {type(exc).__name__}: {exc}") from exc
                status, reason = None, type(exc).__name__
            else:
                if not retryable_status(call, response.status_code):
                    return response
                delay = self.retry.delay(attempt, retry_after(response), waited)
                if delay is None:
                    raise api_error(response)
                status, reason = response.status_code, api_error(response).message
            if self.on_retry is not None:
                self.on_retry(RetryEvent(call, attempt, delay, status, reason))
            time.sleep(delay)
            waited += delay

    def _call(self, call: Call) -> Any:
        headers = dict(self._headers)
        if call.method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())  # EvoLink replays a retried create
        return decode(self._send(call, self.base_url + call.path, headers))

    def _task(self, call: Call) -> Task:
        return Task.from_json(self._call(call))

    # ------------------------------------------------------------------ tasks
    def imagine(
        self,
        prompt: str,
        *,
        speed: Speed | None = None,
        model: str = "mj-v7",
        quality: Quality | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Four images from a Midjourney prompt (`--ar 16:9`, `--seed 42`, … in the text)."""
        return self._task(
            bodies.imagine(prompt, speed=speed, model=model, quality=quality, callback_url=callback_url)
        )

    def upscale(self, task: TaskRef, image_number: int, *, creative: bool = False) -> Task:
        return self._task(bodies.upscale(task_id(task), image_number, creative=creative))

    def vary(
        self,
        task: TaskRef,
        image_number: int,
        *,
        strong: bool = False,
        prompt: str | None = None,
        speed: Speed | None = None,
    ) -> Task:
        return self._task(bodies.vary(task_id(task), image_number, strong=strong, prompt=prompt, speed=speed))

    def remix(
        self,
        task: TaskRef,
        image_number: int,
        prompt: str,
        *,
        strong: bool = True,
        speed: Speed | None = None,
    ) -> Task:
        return self._task(bodies.remix(task_id(task), image_number, prompt, strong=strong, speed=speed))

    def zoom(
        self,
        task: TaskRef,
        image_number: int,
        *,
        scale: float = 1.5,
        prompt: str | None = None,
        speed: Speed | None = None,
    ) -> Task:
        """Zoom out by `scale` (1.1–2): the same size, the source shrunk in the middle."""
        return self._task(bodies.zoom(task_id(task), image_number, scale=scale, prompt=prompt, speed=speed))

    def pan(
        self,
        task: TaskRef,
        image_number: int,
        direction: Direction,
        *,
        scale: float = 1.5,
        prompt: str | None = None,
        speed: Speed | None = None,
    ) -> Task:
        call = bodies.pan(task_id(task), image_number, direction, scale=scale, prompt=prompt, speed=speed)
        return self._task(call)

    def inpaint(
        self,
        task: TaskRef,
        image_number: int,
        mask: Mask,
        *,
        prompt: str | None = None,
        speed: Speed | None = None,
    ) -> Task:
        """Vary Region: repaint the masked part (`polygon_mask(...)`, a mask URL or PNG bytes)."""
        return self._task(bodies.inpaint(task_id(task), image_number, mask, prompt=prompt, speed=speed))

    def video(self, task: TaskRef, image_number: int = 0, *, motion: Motion = "low") -> Task:
        """Animate an image of a finished task (openmj with a video model; EvoLink has none)."""
        return self.get(submitted_id(self._call(bodies.animate(task_id(task), image_number, motion=motion))))

    def get(self, task: TaskRef) -> Task:
        return self._task(bodies.get(task_id(task)))

    def cancel(self, task: TaskRef) -> Task:
        """Cancel an unfinished task (openmj only), refunded."""
        return self._task(bodies.cancel(task_id(task)))

    def tasks(self, page: int = 1, page_size: int = 20, status: str | None = None) -> TaskPage:
        """The key's tasks, newest first (items carry no result links: `get` one for those)."""
        return TaskPage.from_json(self._call(bodies.tasks(page, page_size, status)))

    def balance(self) -> Balance:
        return Balance.from_json(self._call(bodies.balance()))

    # ------------------------------------------------------------------ waiting, files
    def wait(
        self,
        task: TaskRef,
        *,
        on_progress: OnProgress | None = None,
        timeout: float | None = 1200.0,
        interval: float = 1.0,
        raise_on_failure: bool = True,
    ) -> Task:
        """Poll until the task is finished and return it; `on_progress(task)` hears every change of
        status or progress. A failed or cancelled task raises TaskFailedError (unless
        `raise_on_failure=False`); no end within `timeout` seconds raises WaitTimeoutError."""
        watch = Watch(on_progress, timeout)
        current = self.get(task)
        while True:
            watch.seen(current)
            if current.finished:
                return outcome(current, raise_on_failure)
            time.sleep(watch.pause(current, interval))
            current = self.get(current)

    def download(self, task: TaskRef, directory: str | Path = ".", *, grid: bool = False) -> list[Path]:
        """Write a completed task's results to `directory` as `<task id>_<n>.png` (n = 1–4, as
        U1–U4; `.mp4` for video) and, with `grid`, the 2×2 grid; the paths written."""
        done = task if isinstance(task, Task) and task.completed else self.get(task)
        paths = []
        for url, path in downloads(done, directory, grid):
            response = self._send(Call("GET", url), url, {}, follow=True)  # signed: no key sent
            if response.status_code >= 400:
                raise api_error(response)
            write_file(path, response.content)
            paths.append(path)
        return paths
