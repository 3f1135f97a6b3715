"""midjourney-proxy video: /mj/submit/video bodies and imagine's `--video` → core parameters
(docs/api/midjourney-proxy.md, "Video"; the rules are core/video.py's)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from openmj.dialects.common import invalid
from openmj.dialects.mjproxy.wire import VideoBody, image_ref

#: TAO's videoType → the clip class
VIDEO_TYPES = {"vid_1.1_i2v_480": "sd", "vid_1.1_i2v_720": "hd"}


def is_extend(body: VideoBody) -> bool:
    return (body.action or "").strip().lower() == "extend"


def extend_index(body: VideoBody) -> int:
    value = body.index
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise invalid("index must be 0–3 for action extend (the clip to extend)", "index")
    return value


def animate_params(body: VideoBody, request: Request) -> dict[str, Any]:
    if not body.image or not body.image.strip():
        raise invalid("image is required: the first frame, a URL or base64 (image不能为空)", "image")
    video_type = (body.videoType or "vid_1.1_i2v_480").strip()
    if video_type not in VIDEO_TYPES:
        raise invalid(f"videoType must be {' or '.join(VIDEO_TYPES)}", "videoType")
    params: dict[str, Any] = {
        "image_url": image_ref(body.image, "image", request),
        "resolution": VIDEO_TYPES[video_type],
        "motion": body.motion,
        "loop": body.loop,
        "batch": body.batchSize,
    }
    if body.endImage and body.endImage.strip():
        params["end_url"] = image_ref(body.endImage, "endImage", request)
    return params


def imagine_params(parsed: dict[str, Any], images: list[str], request: Request) -> dict[str, Any]:
    """imagine with `--video`: the first image prompt (or base64Array image) is the start frame."""
    urls = list(parsed.get("image_urls") or [])
    start = urls[0] if urls else (images[0] if images else None)
    if start is None:
        raise invalid("Invalid prompt: --video needs a starting image URL", "prompt")
    end = parsed.get("params", {}).get("end")
    return {"image_url": start, **({"end_url": end} if end else {})}
