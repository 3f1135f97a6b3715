"""Image prompts, style and omni references → adapter scales (mj-prompt.md §8, §12; docs/models.md).

Pure mapping, no torch. The local engine applies these through an IP-Adapter (three copies of
one adapter: image prompts and omni reference use every layer, the style reference only the
style layer, as InstantStyle does); a model without an adapter uses the image prompts as an
img2img start instead and refuses --sref/--oref (never silently ignores them).
"""

from __future__ import annotations

from openmj.core.spec import PromptSpec, RefsSpec

IW_DEFAULT = 1.0  # --iw default (0–3)
IW_TO_SCALE = 0.6  # Fooocus ImagePrompt weight 0.6 at iw 1: scale = min(1, 0.6 × iw)
IW_MAX_SCALE = 1.0
SW_DEFAULT = 100  # --sw default (0–1000): style scale = sw/100, capped
SW_MAX_SCALE = 1.5
OW_DEFAULT = 100  # --ow default (1–1000): full-layer scale 0.8 × ow/100, capped
OW_TO_SCALE = 0.8
OW_MAX_SCALE = 1.5
# without an adapter an image prompt becomes the img2img start: iw 0 → no influence (strength 1),
# iw 1 → 0.75 (composition and colours kept, content redrawn), iw 3 → 0.25 (close to the image)
IW_IMG2IMG_STRENGTH_PER_UNIT = 0.25
IW_IMG2IMG_MIN_STRENGTH = 0.25


def image_prompt_scale(iw: float | None) -> float:
    return min(IW_MAX_SCALE, IW_TO_SCALE * (IW_DEFAULT if iw is None else float(iw)))


def image_prompt_strength(iw: float | None) -> float:
    w = IW_DEFAULT if iw is None else float(iw)
    return max(IW_IMG2IMG_MIN_STRENGTH, 1.0 - IW_IMG2IMG_STRENGTH_PER_UNIT * w)


def style_scale(sw: int | None) -> float:
    return min(SW_MAX_SCALE, (SW_DEFAULT if sw is None else int(sw)) / 100)


def omni_scale(ow: int | None) -> float:
    return min(OW_MAX_SCALE, OW_TO_SCALE * (OW_DEFAULT if ow is None else int(ow)) / 100)


def references(prompt: PromptSpec, extra_images: list[str]) -> RefsSpec:
    """The `refs` part of a task spec from the parsed prompt: what the worker must fetch."""
    params = prompt.get("params", {})
    refs: RefsSpec = {}
    images = [*extra_images, *prompt.get("image_urls", [])]
    if images:
        refs["image_prompts"] = images
        refs["iw"] = params.get("iw")
    if params.get("sref"):
        refs["sref"] = params["sref"]
        refs["sw"] = params.get("sw")
    if params.get("oref"):
        refs["oref"] = params["oref"]
        refs["ow"] = params.get("ow")
    return refs
