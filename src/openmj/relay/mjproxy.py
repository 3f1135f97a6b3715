"""The midjourney-proxy client: a core task as its submit routes and the parent's buttons, its
task objects (one by one or in bulk) back as a `Poll`."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

from PIL import Image, ImageDraw

from openmj.core.tasks import Operation, Task
from openmj.relay.upstreams import (
    InputImage,
    Parent,
    Poll,
    Refused,
    Upstream,
    UpstreamError,
    is_policy,
    message_of,
    motion_prompt,
    options_of,
    prompt_of,
)

BLEND_SHAPES = {"1:1": "SQUARE", "2:3": "PORTRAIT", "3:2": "LANDSCAPE"}  # /mj/submit/blend


def numbered_prompts(text: str) -> list[str]:
    """midjourney-proxy's describe answer — "1️⃣ prompt\n\n2️⃣ prompt …" — as its prompts."""
    out = []
    for part in re.split(r"(?:^|\n)\s*(?:[1-9]\ufe0f?\u20e3|\d[.)])\s*", text):
        if part.strip():
            out.append(part.strip())
    return out


_KEYCAP_LINE = re.compile(r"^\s*[1-9]\ufe0f?\u20e3\s*(.+?)\s*$")
_SHORTENED = re.compile(r"(?i)\*\*\s*shortened[^\n]*\n")
_TOKEN = re.compile(r"\*\*(.+?)\*\*|~~(.+?)~~|(\S+)")
#: a word's score as the answer marks it (bold: important, struck through: no effect); the
#: gateway's own /shorten marks them back the same way (dialects/mjproxy/render.py)
BOLD, PLAIN, STRUCK = 1.0, 0.3, 0.0


def shortened(text: str) -> dict[str, Any]:
    """midjourney-proxy's shorten answer — "**IMPORTANT TOKENS**\n**red** fox ~~very~~ …
    **Shortened prompts**\n1️⃣ red fox …" — as a SHORTEN task's output (core/words.py)."""
    parts = _SHORTENED.split(text, maxsplit=1)
    head, tail = (parts[0], parts[1]) if len(parts) == 2 else ("", text)
    marked = " ".join(line for line in head.splitlines() if "IMPORTANT TOKENS" not in line.upper())
    tokens = [
        [bold, BOLD] if bold else [struck, STRUCK] if struck else [plain, PLAIN]
        for bold, struck, plain in _TOKEN.findall(marked)
    ]
    prompts = [m.group(1) for line in tail.splitlines() if (m := _KEYCAP_LINE.match(line))]
    return {"tokens": tokens, "prompts": prompts}


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


class MidjourneyProxy(Upstream):
    dialect = "mjproxy"

    def headers(self) -> dict[str, str]:
        return {"mj-api-secret": self.provider.secret}

    def _result(self, data: Any, *, modal: bool = False) -> str:
        code = self.field(data, "code")
        if code in (1, 22) or (modal and code == 21):  # 22: queued upstream; 21: a modal is open
            return str(self.field(data, "result"))
        if code in (4, 24):
            raise Refused(message_of(data) or "refused", policy=code == 24)
        raise UpstreamError(f"{self.provider.name}: code {code}: {message_of(data)[:200]}")

    def _button(self, task: Task, parent: Parent) -> str:
        """The parent's button for this action, by its id's shape (midjourney-proxy's own ids)."""
        buttons = self.field(self.call("GET", f"/mj/task/{parent.task_id}/fetch"), "buttons")
        ids = [str(b.get("customId", "")) for b in buttons if isinstance(b, dict)]
        n, options = parent.index + 1, options_of(task)
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
        elif op is Operation.VIDEO_UPSCALE:  # TAO: a clip's virtual upscale is a button of its video
            wanted = [f"::video_virtual_upscale::{n}::"]
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
            shape = BLEND_SHAPES.get(str(options_of(task).get("dimensions", "1:1")), "SQUARE")
            body = {"base64Array": [start.data_url, *start.more], "dimensions": shape, **hook}
            return self._result(self.call("POST", "/mj/submit/blend", body))
        if task.operation is Operation.SHORTEN:  # the prompt as the client wrote it
            written = str(options_of(task).get("written") or task.prompt)
            return self._result(self.call("POST", "/mj/submit/shorten", {"prompt": written, **hook}))
        if task.operation is Operation.RETEXTURE:
            if start is None:
                raise Refused("retexture needs an image")
            body = {"prompt": prompt_of(task), "image": start.link or start.data_url, **hook}
            return self._result(self.call("POST", "/mj/submit/retexture", body))
        if task.operation in (Operation.VIDEO, Operation.VIDEO_EXTEND):
            return self._result(
                self.call("POST", "/mj/submit/video", {**self._video(task, parent, start), **hook})
            )
        if task.operation is Operation.IMAGINE:
            body = {"prompt": prompt_of(task), **hook}
            return self._result(self.call("POST", "/mj/submit/imagine", body))
        assert parent is not None
        body = {"taskId": parent.task_id, "customId": self._button(task, parent), **hook}
        if task.operation is not Operation.INPAINT:
            return self._result(self.call("POST", "/mj/submit/action", body))
        # Vary (Region) is two calls: the button opens a modal window (code 21), the mask fills it
        mask = mask_base64(options_of(task).get("mask"))
        modal = self._result(self.call("POST", "/mj/submit/action", body), modal=True)
        filled = {"taskId": modal, "maskBase64": mask, "prompt": prompt_of(task), **hook}
        return self._result(self.call("POST", "/mj/submit/modal", filled))

    def poll(self, upstream_id: str) -> Poll:
        data = self.call("GET", f"/mj/task/{upstream_id}/fetch")
        if data is None:
            raise UpstreamError(f"{self.provider.name}: task {upstream_id} is unknown upstream")
        return self._poll_of(data)

    @staticmethod
    def _video(task: Task, parent: Parent | None, start: InputImage | None) -> dict[str, Any]:
        video = task.spec.get("video", {})
        body: dict[str, Any] = {"prompt": motion_prompt(task), "motion": video.get("motion", "low")}
        if task.operation is Operation.VIDEO_EXTEND:
            assert parent is not None
            return body | {"action": "extend", "taskId": parent.task_id, "index": parent.index}
        if start is None:
            raise Refused("a video needs a start image")
        if start.end is not None:  # the last frame, as the picture itself like the first
            body["endImage"] = start.end
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
            # a describe's or shorten's answer (TAO writes it in finalPrompt)
            text = str((data.get("properties") or {}).get("finalPrompt") or data.get("prompt") or "")
            if not urls and data.get("imageUrl"):
                urls = [str(data["imageUrl"])]
            return Poll("done", 100, urls, videos=videos, text=text)
        if status in ("FAILURE", "CANCEL"):
            reason = str(data.get("failReason") or status)
            return Poll("failed", error=reason, refused=is_policy(reason))
        progress = str(data.get("progress") or "0").rstrip("%")
        return Poll("waiting", int(progress) if progress.isdigit() else 0)
