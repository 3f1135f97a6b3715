"""The calls the client makes, as data: EvoLink request bodies per operation (docs/api/evolink.md),
and the one openmj extension it uses (Animate, through midjourney-proxy's button route)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

GENERATIONS = "/v1/images/generations"
ACTION = "/mj/submit/action"  # openmj's Animate button: EvoLink sells no Midjourney video model

Speed = Literal["draft", "fast", "turbo"]
Direction = Literal["left", "right", "up", "down"]
Motion = Literal["low", "high"]
Quality = Literal["standard", "hd"]
#: a Vary Region mask: the wire object ({"areas": …} or {"url": …}), a mask image's URL or data URI,
#: or PNG bytes (white = repaint)
Mask = dict[str, Any] | str | bytes


@dataclass(frozen=True)
class Call:
    method: Literal["GET", "POST"]
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def _create(model: str, params: dict[str, Any], prompt: str | None = None, **top: Any) -> Call:
    body: dict[str, Any] = {
        "model": model,
        "model_params": {k: v for k, v in params.items() if v is not None},
    }
    if prompt is not None:
        body["prompt"] = prompt
    body |= {k: v for k, v in top.items() if v is not None}
    return Call("POST", GENERATIONS, body)


def _source(task_id: str, image_number: int, speed: Speed | None = None) -> dict[str, Any]:
    return {"task_id": task_id, "image_number": image_number, "speed": speed}


def imagine(
    prompt: str,
    *,
    speed: Speed | None = None,
    model: str = "mj-v7",
    quality: Quality | None = None,
    callback_url: str | None = None,
) -> Call:
    return _create(model, {"speed": speed}, prompt, quality=quality, callback_url=callback_url)


def upscale(task_id: str, image_number: int, *, creative: bool = False) -> Call:
    kind = "creative" if creative else "standard"
    return _create("mj-v7-upscale", {"task_id": task_id, "image_number": image_number, "type": kind})


def vary(
    task_id: str,
    image_number: int,
    *,
    strong: bool = False,
    prompt: str | None = None,
    speed: Speed | None = None,
) -> Call:
    params = _source(task_id, image_number, speed) | {"type": "strong" if strong else "subtle"}
    return _create("mj-v7-variation", params, prompt)


def remix(
    task_id: str, image_number: int, prompt: str, *, strong: bool = True, speed: Speed | None = None
) -> Call:
    params = _source(task_id, image_number, speed) | {"mode": "strong" if strong else "subtle"}
    return _create("mj-v7-remix", params, prompt)


def zoom(
    task_id: str,
    image_number: int,
    *,
    scale: float = 1.5,
    prompt: str | None = None,
    speed: Speed | None = None,
) -> Call:
    return _create("mj-v7-outpaint", _source(task_id, image_number, speed) | {"scale": scale}, prompt)


def pan(
    task_id: str,
    image_number: int,
    direction: Direction,
    *,
    scale: float = 1.5,
    prompt: str | None = None,
    speed: Speed | None = None,
) -> Call:
    params = _source(task_id, image_number, speed) | {"direction": direction, "scale": scale}
    return _create("mj-v7-pan", params, prompt)


def inpaint(
    task_id: str, image_number: int, mask: Mask, *, prompt: str | None = None, speed: Speed | None = None
) -> Call:
    return _create(
        "mj-v7-inpaint", _source(task_id, image_number, speed) | {"mask": mask_field(mask)}, prompt
    )


def animate(task_id: str, image_number: int, *, motion: Motion = "low") -> Call:
    """Animate image `image_number` (0-based) of a finished task: the button a video server offers."""
    custom_id = f"MJ::JOB::animate_{motion}::{image_number + 1}::{task_id}::SOLO"
    return Call("POST", ACTION, {"taskId": task_id, "customId": custom_id})


def get(task_id: str) -> Call:
    return Call("GET", f"/v1/tasks/{task_id}")


def cancel(task_id: str) -> Call:
    return Call("POST", f"/v1/tasks/{task_id}/cancel")


def tasks(page: int = 1, page_size: int = 20, status: str | None = None) -> Call:
    query = {"page": page, "page_size": page_size, "status": status}
    return Call("GET", "/v1/tasks", params={k: v for k, v in query.items() if v is not None})


def balance() -> Call:
    return Call("GET", "/v1/credits")


def polygon_mask(points: Sequence[tuple[float, float]], width: int, height: int) -> dict[str, Any]:
    """A Vary Region mask of one polygon, its points in a `width`×`height` frame (the image's own size)."""
    flat = [round(float(c), 2) for point in points for c in point]
    return {"areas": [{"width": width, "height": height, "points": flat}]}


def mask_field(mask: Mask) -> dict[str, Any]:
    if isinstance(mask, bytes):
        return {"url": "data:image/png;base64," + base64.b64encode(mask).decode()}
    if isinstance(mask, str):
        return {"url": mask}
    return mask
