"""Clients for EvoLink, kie.ai and APIXO (midjourney-proxy's is `mjproxy.py`): each turns a core
task into that API's own calls (its models, index fields) and its answers back into a `Poll`."""

from __future__ import annotations

import json
from typing import Any

from openmj.core.tasks import Operation, Speed, Task
from openmj.relay.mjproxy import MidjourneyProxy
from openmj.relay.providers import Provider
from openmj.relay.upstreams import (
    InputImage,
    Parent,
    Poll,
    Refused,
    Upstream,
    UpstreamError,
    canvas_of,
    credits_of,
    motion_prompt,
    options_of,
    picture_link,
    prompt_of,
)


class EvoLink(Upstream):
    dialect = "evolink"
    SPEEDS = {Speed.TURBO: "turbo", Speed.DRAFT: "draft", Speed.RELAX: "fast", Speed.FAST: "fast"}
    #: the models that take an uploaded picture
    UPLOADS = {
        Operation.UPLOAD_PAINT: "mj-v7-upload-paint",
        Operation.RETEXTURE: "mj-v7-retexture",
        Operation.REMOVE_BG: "mj-v7-remove-bg",
    }

    def submit(
        self, task: Task, parent: Parent | None, callback: str | None = None, start: InputImage | None = None
    ) -> str:
        body: dict[str, Any]
        if task.operation is Operation.IMAGINE:
            speed = self.SPEEDS[task.speed]
            body = {"model": "mj-v7", "prompt": prompt_of(task), "model_params": {"speed": speed}}
        elif task.operation in self.UPLOADS:  # the picture by its link (image_urls)
            model, params = self.UPLOADS[task.operation], canvas_of(task, "img_pos")
            body = {"model": model, "image_urls": [picture_link(start)], "model_params": params}
            if task.operation is not Operation.REMOVE_BG:
                body["prompt"] = prompt_of(task)
        else:
            assert parent is not None
            model, params = self._action(task)
            source = {"task_id": parent.task_id, "image_number": parent.index}
            body = {"model": model, "model_params": {**source, **params}}
            if task.operation in (Operation.REMIX, Operation.EDIT) or (
                task.operation is Operation.INPAINT and prompt_of(task)
            ):
                body["prompt"] = prompt_of(task)
        if callback:
            body["callback_url"] = callback
        return str(self.field(self.call("POST", "/v1/images/generations", body), "id"))

    @staticmethod
    def _action(task: Task) -> tuple[str, dict[str, Any]]:
        """EvoLink's model for an action, and its model_params (docs/api/evolink.md)."""
        o, op = options_of(task), task.operation
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
        if op is Operation.EDIT:  # the editor on the source: canvas, its place, an optional mask
            return "mj-v7-edit", canvas_of(task, "img_pos")
        raise Refused(f"EvoLink has no model for {op.value}")

    def poll(self, upstream_id: str) -> Poll:
        data = self.call("GET", f"/v1/tasks/{upstream_id}")
        status = self.field(data, "status")
        if status == "completed":
            return Poll("done", 100, [str(u) for u in self.field(data, "results")], credits=credits_of(data))
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
            body = {"taskType": "mj_txt2img", "prompt": prompt_of(task), "speed": self.SPEEDS[task.speed]}
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
                "prompt": motion_prompt(task) if manual else "",
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
            "prompt": motion_prompt(task),
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
                "prompt": prompt_of(task),
                "speed": self.SPEEDS[task.speed],
            }
        elif task.operation in (Operation.UPLOAD_PAINT, Operation.EDIT):
            # the editor on a picture, by its link: an upload, or the gateway's copy of the source
            mode = "upload-paint" if task.operation is Operation.UPLOAD_PAINT else "image-edit"
            inp = {"mode": mode, "prompt": prompt_of(task), "image_urls": [picture_link(start)]}
            inp |= canvas_of(task, "imgPos", keep_outside=True)
        else:
            assert parent is not None
            inp = {"taskId": parent.task_id, "imageIndex": parent.index}
            if task.operation is Operation.UPSCALE:
                inp |= {"mode": "upscale", "type": 1 if options_of(task).get("mode") == "creative" else 0}
            elif task.operation is Operation.VARIATION:
                inp |= {"mode": "vary", "type": 1 if options_of(task).get("strength") == "strong" else 0}
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


CLIENTS: dict[str, type[Upstream]] = {
    "evolink": EvoLink,
    "kie": Kie,
    "apixo": Apixo,
    "mjproxy": MidjourneyProxy,
}


def client_for(provider: Provider) -> Upstream:
    return CLIENTS[provider.dialect](provider)
