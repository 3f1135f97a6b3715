"""Image prompts, --sref and --oref through an IP-Adapter (or img2img when there is none).

The adapter is loaded three times over (one copy each for image prompts, style and omni
reference, so each gets its own scale) for the duration of a job that uses references, and
unloaded afterwards: jobs without references run exactly as if no adapter existed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from openmj.core import references as R
from openmj.core.spec import RefsSpec
from openmj.engines.local.pipelines import Pipelines

SLOTS = ("image_prompt", "style", "omni")


def has_references(job_extra: dict[str, Any]) -> bool:
    return any(job_extra.get(k) for k in ("image_prompts", "sref", "oref", "blend"))


def _adapter_source(pipes: Pipelines) -> str:
    src = pipes.preset.ip_adapter
    assert src is not None
    if src == "tiny":
        return str(Path(pipes.source_path) / "ip_adapter")
    return src


def style_scale_map(unet: Any, scale: float) -> dict[str, Any]:
    """InstantStyle: only the middle attention of the first up block that has attentions."""
    for i, block in enumerate(unet.up_blocks):
        n = len(getattr(block, "attentions", []) or [])
        if n:
            layers = [0.0] * n
            layers[n // 2] = scale
            return {"up": {f"block_{i}": layers}}
    return {"up": {"block_0": [scale]}}


@contextlib.contextmanager
def adapter(pipes: Pipelines) -> Iterator[None]:
    pipe = pipes.pipe
    src = _adapter_source(pipes)
    sub, weight = pipes.preset.ip_adapter_subfolder, pipes.preset.ip_adapter_weight_name
    pipe.load_ip_adapter([src] * len(SLOTS), subfolder=[sub] * len(SLOTS), weight_name=[weight] * len(SLOTS))
    try:
        yield
    finally:
        pipe.unload_ip_adapter()
        pipes.reset_variants()


def _side(size: Any, name: str, default: int) -> int:
    value = size.get(name) if isinstance(size, dict) else getattr(size, name, None)
    return int(value) if value else default


def fit_for_encoder(image: Image.Image, processor: Any) -> Image.Image:
    """The image at exactly the size the adapter's image processor crops to (CLIP: short side 224,
    centre crop 224×224), resized here, so the processor never scales a big or thin input itself
    (that is how a 200000×1 picture became a 10-gigapixel array). Same resampling and crop as the
    processor, so the embedding does not change."""
    short = _side(getattr(processor, "size", None), "shortest_edge", 224)
    crop = getattr(processor, "crop_size", None)
    cw, ch = _side(crop, "width", short), _side(crop, "height", short)
    rgb = image.convert("RGB")
    w, h = rgb.size
    # the long side truncated, as transformers computes it (`int(short * long / short_side)`)
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    resized = rgb.resize((max(cw, size[0]), max(ch, size[1])), Image.Resampling.BICUBIC)
    left, top = (resized.width - cw) // 2, (resized.height - ch) // 2
    return resized.crop((left, top, left + cw, top + ch))


def adapter_kwargs(pipes: Pipelines, refs: RefsSpec, extra: dict[str, Any]) -> dict[str, Any]:
    """`ip_adapter_image` for the three slots and the matching scales (unused slots: scale 0)."""
    blank = Image.new("RGB", (224, 224), (127, 127, 127))
    processor = getattr(pipes.pipe, "feature_extractor", None)

    def fit(im: Image.Image) -> Image.Image:
        return fit_for_encoder(im, processor)

    prompts = [fit(im) for im in extra.get("image_prompts") or extra.get("blend") or []]
    styles = [fit(img) for img, _w in extra.get("sref") or []]
    omni = fit(extra["oref"]) if extra.get("oref") is not None else None
    scales: list[Any] = [
        R.image_prompt_scale(refs.get("iw")) if prompts else 0.0,
        style_scale_map(pipes.pipe.unet, R.style_scale(refs.get("sw"))) if styles else 0.0,
        R.omni_scale(refs.get("ow")) if omni is not None else 0.0,
    ]
    pipes.pipe.set_ip_adapter_scale(scales)
    return {
        "ip_adapter_image": [prompts or [blank], styles or [blank], [omni] if omni is not None else [blank]]
    }


def reference_images(extra: dict[str, Any]) -> list[Image.Image]:
    """A natively conditioned family's reference list (FLUX.2 klein takes several): the image
    prompts, then the style references, then the omni reference, as RGB. Their weights (--iw,
    --sw, --ow) have no counterpart in such a pipeline; docs/models.md says so."""
    images = [*(extra.get("image_prompts") or extra.get("blend") or [])]
    images += [img for img, _w in extra.get("sref") or []]
    if extra.get("oref") is not None:
        images.append(extra["oref"])
    return [im.convert("RGB") for im in images]


def blended(images: list[Image.Image], size: tuple[int, int]) -> Image.Image:
    """Several image prompts without an adapter: their average, as the img2img start."""
    frames = [im.convert("RGB").resize(size, Image.Resampling.LANCZOS) for im in images]
    out = frames[0]
    for i, frame in enumerate(frames[1:], start=2):
        out = Image.blend(out, frame, 1 / i)
    return out
