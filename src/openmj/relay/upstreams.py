"""What every upstream client shares: the base `Upstream` (HTTP calls with their failures sorted),
the `Poll` it answers with, and the task's prompt as an upstream is sent it. One client per API
turns a core task into that API's own calls: `clients.py` (EvoLink, kie.ai, APIXO) and
`mjproxy.py` (midjourney-proxy).

Blocking (httpx): the relay engine runs in the worker's engine thread, like a diffusion job.
Every failure is sorted here, once: `UpstreamError` is the upstream's (failover), `Refused` the
client's (reported, never retried).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from openmj.core.prompt.render import prompt_text
from openmj.core.tasks import Task
from openmj.relay.providers import Provider


class UpstreamError(Exception):
    """The upstream failed (unreachable, slow, 5xx, 429, its key refused, a malformed answer)."""

    def __init__(self, message: str, *, retry_after: float | None = None, key_refused: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.key_refused = key_refused


class Refused(Exception):
    """The upstream refused the request itself (a bad prompt, a banned word): the client's fault."""

    def __init__(self, message: str, *, policy: bool = False) -> None:
        super().__init__(message)
        self.policy = policy  # a content-policy refusal rather than an invalid request


@dataclass
class Poll:
    state: Literal["waiting", "done", "failed"]
    progress: int = 0
    urls: list[str] = field(default_factory=list)
    error: str = ""
    refused: bool = False  # failed for the request's own reason (content policy, invalid prompt)
    credits: float | None = None  # what the upstream says the task cost there (EvoLink's usage)
    videos: list[str] = field(default_factory=list)  # a video task's clips (`urls` its thumbnails)
    text: str = ""  # a describe's answer, as the upstream wrote it


@dataclass(frozen=True)
class InputImage:
    """A picture the upstream needs (a video's first frame, the image to describe, the images to
    blend): a link it can fetch (the client's own, or a signed link to this gateway's copy), and
    the picture itself as a PNG data URL."""

    link: str | None
    data_url: str
    more: tuple[str, ...] = ()  # a blend's other images, as data URLs
    end: str | None = None  # a video's last frame, as a data URL


@dataclass(frozen=True)
class Parent:
    """The upstream task a follow-up acts on: its provider's own id and the image index (0-based)."""

    task_id: str
    index: int


_POLICY_WORDS = ("banned", "sensitive", "content policy", "content_policy", "moderation", "violation", "敏感")


def is_policy(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _POLICY_WORDS)


_POOLS: dict[tuple[str, float], httpx.Client] = {}
_POOLS_LOCK = threading.Lock()


def _pool(base_url: str, timeout: float) -> httpx.Client:
    """One client per upstream address for the whole process (httpx's clients are thread-safe):
    a client of its own per call loaded the CA bundle again (~0.1 s of CPU) and opened a new
    connection for every poll of every waiting task."""
    with _POOLS_LOCK:
        client = _POOLS.get((base_url, timeout))
        if client is None:
            client = _POOLS[(base_url, timeout)] = httpx.Client(base_url=base_url, timeout=timeout)
        return client


class Upstream:
    dialect = ""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    # -------------------------------------------------------------- HTTP, with failures sorted
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider.secret}"}

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        try:
            c = _pool(self.provider.base_url, self.provider.timeout_s)
            r = c.request(method, path, json=body, params=params, headers=self.headers())
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"{self.provider.name}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{self.provider.name}: unreachable ({type(exc).__name__})") from exc
        if r.status_code == 429:
            after = r.headers.get("retry-after", "")
            raise UpstreamError(
                f"{self.provider.name}: rate limited (429)",
                retry_after=float(after) if after.replace(".", "", 1).isdigit() else None,
            )
        if r.status_code in (401, 402, 403):
            raise UpstreamError(f"{self.provider.name}: key refused ({r.status_code})", key_refused=True)
        if r.status_code >= 500:
            raise UpstreamError(f"{self.provider.name}: server error ({r.status_code})")
        try:
            data = r.json()
        except ValueError as exc:
            raise UpstreamError(f"{self.provider.name}: malformed answer (not JSON)") from exc
        if r.status_code in (400, 404, 413, 422):
            raise Refused(
                message_of(data) or f"refused by the upstream ({r.status_code})", policy=is_policy(str(data))
            )
        if not 200 <= r.status_code < 300:
            raise UpstreamError(f"{self.provider.name}: unexpected status {r.status_code}")
        return data

    def envelope(self, data: Any) -> Any:
        """`data` of a `{"code", "msg", "data"}` answer (kie.ai, APIXO): the code sorted like a status."""
        code = data.get("code") if isinstance(data, dict) else None
        if code == 200:
            return self.field(data, "data")
        if code in (401, 402):
            raise UpstreamError(f"{self.provider.name}: key refused ({code})", key_refused=True)
        if code == 429:
            raise UpstreamError(f"{self.provider.name}: rate limited (429)")
        if code in (400, 404, 422):
            raise Refused(message_of(data) or "refused", policy=is_policy(str(data)))
        raise UpstreamError(f"{self.provider.name}: error {code}: {message_of(data)[:200]}")

    def field(self, data: Any, *path: str) -> Any:
        """data[path…], or UpstreamError when the answer does not have it (malformed)."""
        for key in path:
            if not isinstance(data, dict) or key not in data:
                raise UpstreamError(f"{self.provider.name}: malformed answer (no {'.'.join(path)})")
            data = data[key]
        return data

    # -------------------------------------------------------------- the dialect's part
    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        """Send the task; `callback` is a URL on this gateway the upstream may call when it changes,
        `start` a video's first frame."""
        raise NotImplementedError

    def poll(self, upstream_id: str) -> Poll:
        raise NotImplementedError

    #: the API reads many tasks in one call (`poll_many`), so one thread polls them all
    bulk = False

    def poll_many(self, upstream_ids: list[str]) -> dict[str, Poll]:
        raise NotImplementedError


def message_of(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("msg", "message", "description", "failReason"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
        if isinstance(data.get("error"), dict):
            return str(data["error"].get("message") or "")
    return ""


def credits_of(data: Any) -> float | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    for key in ("credits_used", "credits_reserved"):
        if isinstance(usage.get(key), int | float):
            return float(usage[key])
    return None


def motion_prompt(task: Task) -> str:
    """A video's prompt: the words only (the upstream's own fields carry motion, batch, size)."""
    return str(task.spec.get("prompt", {}).get("text", "")).strip()


def prompt_of(task: Task) -> str:
    return prompt_text(task.spec.get("prompt", {}))


def options_of(task: Task) -> dict[str, Any]:
    return dict(task.spec.get("options", {}))


def picture_link(start: InputImage | None) -> str:
    """The picture an upload operation works on, as a link: the client's own, else the picture
    itself as a data URL."""
    if start is None:
        raise Refused("this operation needs an image")
    return start.link or start.data_url


def canvas_of(task: Task, pos_name: str, *, keep_outside: bool = False) -> dict[str, Any]:
    """The editor's fields: `canvas`, the image's place on it (`pos_name`: EvoLink's `img_pos`,
    APIXO's `imgPos`) and the mask, if any. With `keep_outside`, an edit without a mask says what
    Midjourney's editor repaints, the canvas around the image, for an API that would otherwise
    repaint the whole picture (APIXO fills a missing mask with it)."""
    o = options_of(task)
    if "canvas" not in o:
        return {}
    out: dict[str, Any] = {"canvas": o["canvas"], pos_name: o["img_pos"]}
    mask = o.get("mask") or (outside_mask(o["canvas"], o["img_pos"]) if keep_outside else None)
    return out | ({"mask": mask} if mask else {})


def outside_mask(canvas: dict[str, Any], pos: dict[str, Any]) -> dict[str, Any] | None:
    """The canvas around the image as mask areas (up to four bands), None if it has none."""
    cw, ch = int(canvas["width"]), int(canvas["height"])
    x0, y0 = max(0, int(pos["x"])), max(0, int(pos["y"]))
    x1, y1 = min(cw, int(pos["x"]) + int(pos["width"])), min(ch, int(pos["y"]) + int(pos["height"]))
    bands = [(0, 0, cw, y0), (0, y1, cw, ch), (0, y0, x0, y1), (x1, y0, cw, y1)]
    areas = [
        {"width": cw, "height": ch, "points": [a, b, c, b, c, d, a, d]}
        for a, b, c, d in bands
        if c > a and d > b
    ]
    return {"areas": areas} if areas else None
