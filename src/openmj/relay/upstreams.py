"""Clients for the upstream APIs: one small class per dialect, each turning a core task into that
API's own calls (its models, index fields or button ids) and its answers back into a `Poll`.

Blocking (httpx): the relay engine runs in the worker's engine thread, like a diffusion job.
Every failure is sorted here, once: `UpstreamError` is the upstream's (failover), `Refused` the
client's (reported, never retried).
"""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from PIL import Image, ImageDraw

from openmj.core.prompt.render import prompt_text
from openmj.core.tasks import Operation, Speed, Task
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


@dataclass(frozen=True)
class Parent:
    """The upstream task a follow-up acts on: its provider's own id and the image index (0-based)."""

    task_id: str
    index: int


_POLICY_WORDS = ("banned", "sensitive", "content policy", "content_policy", "moderation", "violation", "敏感")


def is_policy(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _POLICY_WORDS)


class Upstream:
    dialect = ""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    # -------------------------------------------------------------- HTTP, with failures sorted
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider.secret}"}

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        try:
            with httpx.Client(base_url=self.provider.base_url, timeout=self.provider.timeout_s) as c:
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
                _message(data) or f"refused by the upstream ({r.status_code})", policy=is_policy(str(data))
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
            raise Refused(_message(data) or "refused", policy=is_policy(str(data)))
        raise UpstreamError(f"{self.provider.name}: error {code}: {_message(data)[:200]}")

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


def _message(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("msg", "message", "description", "failReason"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
        if isinstance(data.get("error"), dict):
            return str(data["error"].get("message") or "")
    return ""


def _credits(data: Any) -> float | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    for key in ("credits_used", "credits_reserved"):
        if isinstance(usage.get(key), int | float):
            return float(usage[key])
    return None


BLEND_SHAPES = {"1:1": "SQUARE", "2:3": "PORTRAIT", "3:2": "LANDSCAPE"}  # /mj/submit/blend


def numbered_prompts(text: str) -> list[str]:
    """midjourney-proxy's describe answer — "1️⃣ prompt\n\n2️⃣ prompt …" — as its prompts."""
    out = []
    for part in re.split(r"(?:^|\n)\s*(?:[1-9]\ufe0f?\u20e3|\d[.)])\s*", text):
        if part.strip():
            out.append(part.strip())
    return out


def mask_base64(mask: Any) -> str:
    """A Vary (Region) mask as midjourney-proxy's `maskBase64` (a PNG, white = repaint): a data
    link as it is, polygon areas drawn in their frame."""
    if isinstance(mask, dict) and str(mask.get("url", "")).startswith("data:"):
        return str(mask["url"])
    if isinstance(mask, dict) and isinstance(mask.get("areas"), list) and mask["areas"]:
        first = mask["areas"][0]
        canvas = Image.new("L", (int(first["width"]), int(first["height"])), 0)
        draw = ImageDraw.Draw(canvas)
        for area in mask["areas"]:
            sx, sy = canvas.width / float(area["width"]), canvas.height / float(area["height"])
            pts = [float(v) for v in area["points"]]
            draw.polygon([(pts[i] * sx, pts[i + 1] * sy) for i in range(0, len(pts) - 1, 2)], fill=255)
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    raise Refused("midjourney-proxy takes a Vary (Region) mask as base64 or areas, not as a link")


def _motion_prompt(task: Task) -> str:
    """A video's prompt: the words only (the upstream's own fields carry motion, batch, size)."""
    return str(task.spec.get("prompt", {}).get("text", "")).strip()


def _prompt(task: Task) -> str:
    return prompt_text(task.spec.get("prompt", {}))


def _options(task: Task) -> dict[str, Any]:
    return dict(task.spec.get("options", {}))


class EvoLink(Upstream):
    dialect = "evolink"
    SPEEDS = {Speed.TURBO: "turbo", Speed.DRAFT: "draft", Speed.RELAX: "fast", Speed.FAST: "fast"}

    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        body: dict[str, Any]
        if task.operation is Operation.IMAGINE:
            speed = self.SPEEDS[task.speed]
            body = {"model": "mj-v7", "prompt": _prompt(task), "model_params": {"speed": speed}}
        else:
            assert parent is not None
            model, params = self._action(task)
            source = {"task_id": parent.task_id, "image_number": parent.index}
            body = {"model": model, "model_params": {**source, **params}}
            if task.operation is Operation.REMIX or (task.operation is Operation.INPAINT and _prompt(task)):
                body["prompt"] = _prompt(task)
        if callback:
            body["callback_url"] = callback
        return str(self.field(self.call("POST", "/v1/images/generations", body), "id"))

    @staticmethod
    def _action(task: Task) -> tuple[str, dict[str, Any]]:
        """EvoLink's model for an action, and its model_params (docs/api/evolink.md)."""
        o, op = _options(task), task.operation
        if op is Operation.UPSCALE:
            return "mj-v7-upscale", {"type": "creative" if o.get("mode") == "creative" else "standard"}
        if op is Operation.VARIATION:
            return "mj-v7-variation", {"type": o.get("strength", "subtle")}
        if op is Operation.REMIX:
            return "mj-v7-remix", {"mode": o.get("strength", "strong")}
        if op is Operation.ZOOM:
            return "mj-v7-outpaint", {"scale": max(1.1, float(o.get("scale", 1.5)))}
        if op is Operation.PAN:
            return "mj-v7-pan", {"direction": o.get("direction", "down"), "scale": float(o.get("scale", 1.5))}
        if op is Operation.ENHANCE:
            return "mj-v7-enhance", {}
        if op is Operation.INPAINT:  # Vary (Region): the mask as given (areas or a link)
            return "mj-v7-inpaint", {"mask": o.get("mask")}
        raise Refused(f"EvoLink has no model for {op.value}")

    def poll(self, upstream_id: str) -> Poll:
        data = self.call("GET", f"/v1/tasks/{upstream_id}")
        status = self.field(data, "status")
        if status == "completed":
            return Poll("done", 100, [str(u) for u in self.field(data, "results")], credits=_credits(data))
        if status in ("failed", "cancelled"):
            error = data.get("error") or {}
            code = str(error.get("code", ""))
            refused = code in ("content_policy_violation", "invalid_parameters", "invalid_prompt")
            return Poll("failed", error=str(error.get("message") or status), refused=refused)
        return Poll("waiting", int(data.get("progress") or 0))


class Kie(Upstream):
    dialect = "kie"
    SPEEDS = {Speed.TURBO: "turbo", Speed.RELAX: "relaxed", Speed.FAST: "fast", Speed.DRAFT: "fast"}

    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        body: dict[str, Any]
        if task.operation is Operation.IMAGINE:
            body = {"taskType": "mj_txt2img", "prompt": _prompt(task), "speed": self.SPEEDS[task.speed]}
            path = "/api/v1/mj/generate"
        elif task.operation is Operation.VIDEO:
            body, path = self._video(task, start), "/api/v1/mj/generate"
        elif task.operation is Operation.VIDEO_EXTEND:
            assert parent is not None
            manual = bool(task.spec.get("video", {}).get("manual"))
            body = {
                "taskId": parent.task_id,
                "index": parent.index,
                "taskType": "mj_video_extend_manual" if manual else "mj_video_extend_auto",
                "prompt": _motion_prompt(task) if manual else "",
            }
            path = "/api/v1/mj/generateVideoExtend"
        else:
            assert parent is not None
            if task.operation not in (Operation.UPSCALE, Operation.VARIATION):
                raise Refused(f"kie.ai has no call for {task.operation.value}")
            body = {"taskId": parent.task_id, "imageIndex": parent.index}
            path = (
                "/api/v1/mj/generateUpscale"
                if task.operation is Operation.UPSCALE
                else "/api/v1/mj/generateVary"
            )
        if callback:
            body["callBackUrl"] = callback
        return str(self.field(self.envelope(self.call("POST", path, body)), "taskId"))

    @staticmethod
    def _video(task: Task, start: InputImage | None) -> dict[str, Any]:
        video = task.spec.get("video", {})
        if start is None or not start.link:
            raise Refused("kie.ai takes a video's start image as a link")
        if video.get("end_url") or video.get("loop"):
            raise Refused("kie.ai has no end frame or loop for video")
        return {
            "taskType": "mj_video_hd" if video.get("resolution") == "hd" else "mj_video",
            "prompt": _motion_prompt(task),
            "fileUrls": [start.link],
            "motion": video.get("motion", "low"),
            "videoBatchSize": video.get("batch", 1),
        }

    def poll(self, upstream_id: str) -> Poll:
        data = self.envelope(self.call("GET", "/api/v1/mj/record-info", params={"taskId": upstream_id}))
        flag = self.field(data, "successFlag")
        if flag == 1:
            urls = [str(u["resultUrl"]) for u in self.field(data, "resultInfoJson", "resultUrls")]
            return Poll("done", 100, urls)
        if flag in (2, 3):
            message = str(data.get("errorMessage") or "failed")
            return Poll("failed", error=message, refused=data.get("errorCode") == 400)
        return Poll("waiting")


class Apixo(Upstream):
    dialect = "apixo"
    SPEEDS = {Speed.TURBO: "turbo", Speed.RELAX: "relaxed", Speed.FAST: "fast", Speed.DRAFT: "draft"}
    PATH = "/api/v1/generateTask/midjourney"

    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        if task.operation is Operation.IMAGINE:
            inp: dict[str, Any] = {
                "mode": "text-to-image",
                "prompt": _prompt(task),
                "speed": self.SPEEDS[task.speed],
            }
        else:
            assert parent is not None
            inp = {"taskId": parent.task_id, "imageIndex": parent.index}
            if task.operation is Operation.UPSCALE:
                inp |= {"mode": "upscale", "type": 1 if _options(task).get("mode") == "creative" else 0}
            elif task.operation is Operation.VARIATION:
                inp |= {"mode": "vary", "type": 1 if _options(task).get("strength") == "strong" else 0}
            elif task.operation is Operation.ENHANCE:
                inp |= {"mode": "enhance"}
            elif task.operation is Operation.REROLL:
                inp = {"mode": "reroll", "taskId": parent.task_id}
            else:
                raise Refused(f"APIXO has no mode for {task.operation.value}")
        body: dict[str, Any] = {"request_type": "async", "input": inp}
        if callback:  # APIXO calls back only in callback mode
            body |= {"request_type": "callback", "callback_url": callback}
        return str(self.field(self.envelope(self.call("POST", self.PATH, body)), "taskId"))

    def poll(self, upstream_id: str) -> Poll:
        data = self.envelope(
            self.call("GET", "/api/v1/statusTask/midjourney", params={"taskId": upstream_id})
        )
        state = self.field(data, "state")
        if state == "success":
            try:
                urls = json.loads(self.field(data, "resultJson"))["resultUrls"]
            except (ValueError, KeyError, TypeError) as exc:
                raise UpstreamError(f"{self.provider.name}: malformed resultJson") from exc
            return Poll("done", 100, [str(u) for u in urls])
        if state == "failed":
            code = str(data.get("failCode") or "")
            return Poll(
                "failed",
                error=str(data.get("failMsg") or code),
                refused=code in ("CONTENT_VIOLATION", "INVALID_PROMPT"),
            )
        return Poll("waiting")


class MidjourneyProxy(Upstream):
    dialect = "mjproxy"

    def headers(self) -> dict[str, str]:
        return {"mj-api-secret": self.provider.secret}

    def _result(self, data: Any, *, modal: bool = False) -> str:
        code = self.field(data, "code")
        if code in (1, 22) or (modal and code == 21):  # 22: queued upstream; 21: a modal is open
            return str(self.field(data, "result"))
        if code in (4, 24):
            raise Refused(_message(data) or "refused", policy=code == 24)
        raise UpstreamError(f"{self.provider.name}: code {code}: {_message(data)[:200]}")

    def _button(self, task: Task, parent: Parent) -> str:
        """The parent's button for this action, by its id's shape (midjourney-proxy's own ids)."""
        buttons = self.field(self.call("GET", f"/mj/task/{parent.task_id}/fetch"), "buttons")
        ids = [str(b.get("customId", "")) for b in buttons if isinstance(b, dict)]
        n, options = parent.index + 1, _options(task)
        op = task.operation
        if op is Operation.REROLL:
            wanted = ["::reroll::"]
        elif op is Operation.UPSCALE and options.get("factor", 2) == 1:
            wanted = [f"::upsample::{n}::"]
        elif op is Operation.UPSCALE:
            wanted = [f"_2x_{options.get('mode', 'subtle')}::", "upsample_v5_2x::"]
        elif op is Operation.VARIATION:
            strength = "high" if options.get("strength") == "strong" else "low"
            wanted = [f"::variation::{n}::", f"::{strength}_variation::"]
        elif op is Operation.ZOOM and float(options.get("scale", 0)) in (1.5, 2.0):
            wanted = [f"MJ::Outpaint::{'50' if float(options['scale']) == 2.0 else '75'}::"]
        elif op is Operation.PAN:
            wanted = [f"::pan_{options.get('direction', 'down')}::"]
        elif op is Operation.MAKE_SQUARE:
            wanted = ["MJ::Outpaint::100::"]
        elif op is Operation.INPAINT:
            wanted = ["MJ::Inpaint::"]
        else:  # a custom zoom would need the modal window
            raise Refused(f"midjourney-proxy has no button for {op.value} {options}")
        for w in wanted:
            for cid in ids:
                if w in cid + "::":
                    return cid
        raise Refused(f"the upstream task {parent.task_id} offers no button for {task.operation.value}")

    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        hook: dict[str, Any] = {"notifyHook": callback} if callback else {}
        if task.operation is Operation.DESCRIBE:
            if start is None:
                raise Refused("describe needs an image")
            return self._result(self.call("POST", "/mj/submit/describe", {"base64": start.data_url, **hook}))
        if task.operation is Operation.BLEND:
            if start is None:
                raise Refused("blend needs images")
            shape = BLEND_SHAPES.get(str(_options(task).get("dimensions", "1:1")), "SQUARE")
            body = {"base64Array": [start.data_url, *start.more], "dimensions": shape, **hook}
            return self._result(self.call("POST", "/mj/submit/blend", body))
        if task.operation in (Operation.VIDEO, Operation.VIDEO_EXTEND):
            return self._result(
                self.call("POST", "/mj/submit/video", {**self._video(task, parent, start), **hook})
            )
        if task.operation is Operation.IMAGINE:
            body = {"prompt": _prompt(task), **hook}
            return self._result(self.call("POST", "/mj/submit/imagine", body))
        assert parent is not None
        body = {"taskId": parent.task_id, "customId": self._button(task, parent), **hook}
        if task.operation is not Operation.INPAINT:
            return self._result(self.call("POST", "/mj/submit/action", body))
        # Vary (Region) is two calls: the button opens a modal window (code 21), the mask fills it
        mask = mask_base64(_options(task).get("mask"))
        modal = self._result(self.call("POST", "/mj/submit/action", body), modal=True)
        filled = {"taskId": modal, "maskBase64": mask, "prompt": _prompt(task), **hook}
        return self._result(self.call("POST", "/mj/submit/modal", filled))

    def poll(self, upstream_id: str) -> Poll:
        data = self.call("GET", f"/mj/task/{upstream_id}/fetch")
        if data is None:
            raise UpstreamError(f"{self.provider.name}: task {upstream_id} is unknown upstream")
        return self._poll_of(data)

    @staticmethod
    def _video(task: Task, parent: Parent | None, start: InputImage | None) -> dict[str, Any]:
        video = task.spec.get("video", {})
        body: dict[str, Any] = {"prompt": _motion_prompt(task), "motion": video.get("motion", "low")}
        if task.operation is Operation.VIDEO_EXTEND:
            assert parent is not None
            return body | {"action": "extend", "taskId": parent.task_id, "index": parent.index}
        if start is None:
            raise Refused("a video needs a start image")
        if video.get("end_url"):
            raise Refused("an end frame cannot be relayed to midjourney-proxy yet")
        return body | {
            "image": start.data_url,
            "loop": bool(video.get("loop")),
            "batchSize": video.get("batch", 4),
            "videoType": "vid_1.1_i2v_720" if video.get("resolution") == "hd" else "vid_1.1_i2v_480",
        }

    bulk = True  # new-api polls midjourney-proxy channels the same way

    def poll_many(self, upstream_ids: list[str]) -> dict[str, Poll]:
        """`POST /mj/task/list-by-condition {ids}`: the tasks it knows (missing ids are left out)."""
        data = self.call("POST", "/mj/task/list-by-condition", {"ids": upstream_ids})
        if not isinstance(data, list):
            raise UpstreamError(f"{self.provider.name}: malformed answer (list-by-condition is no list)")
        wanted = set(upstream_ids)
        out: dict[str, Poll] = {}
        for item in data:
            tid = str(item.get("id")) if isinstance(item, dict) else ""
            if tid in wanted:
                out[tid] = self._poll_of(item)
        return out

    def _poll_of(self, data: Any) -> Poll:
        status = self.field(data, "status")
        if status == "SUCCESS":
            urls = [
                str(u["url"]) for u in data.get("imageUrls") or [] if isinstance(u, dict) and u.get("url")
            ]
            videos = [
                str(u["url"]) for u in data.get("videoUrls") or [] if isinstance(u, dict) and u.get("url")
            ]
            text = str(data.get("prompt") or (data.get("properties") or {}).get("finalPrompt") or "")
            if not urls and data.get("imageUrl"):
                urls = [str(data["imageUrl"])]
            return Poll("done", 100, urls, videos=videos, text=text)
        if status in ("FAILURE", "CANCEL"):
            reason = str(data.get("failReason") or status)
            return Poll("failed", error=reason, refused=is_policy(reason))
        progress = str(data.get("progress") or "0").rstrip("%")
        return Poll("waiting", int(progress) if progress.isdigit() else 0)


CLIENTS: dict[str, type[Upstream]] = {
    "evolink": EvoLink,
    "kie": Kie,
    "apixo": Apixo,
    "mjproxy": MidjourneyProxy,
}


def client_for(provider: Provider) -> Upstream:
    return CLIENTS[provider.dialect](provider)
