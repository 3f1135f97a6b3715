"""Masks for vary region and the editor: polygons or a black/white image → an L image, 255 = repaint."""

from __future__ import annotations

from typing import cast

from PIL import Image, ImageDraw

from openmj.core.spec import MaskSpec

MASK_THRESHOLD = 127  # a grey mask pixel above this is "repaint" (white = repaint, black = keep)


def rasterize(mask: MaskSpec | None, size: tuple[int, int], image: Image.Image | None = None) -> Image.Image:
    """`mask` is the validated spec: {"areas": [...]} (points in each area's own width×height frame)
    or {"url": ...} whose fetched picture is `image`."""
    if not mask:
        raise ValueError("the task has no mask")
    w, h = size
    if "areas" in mask:
        out = Image.new("L", size, 0)
        draw = ImageDraw.Draw(out)
        for area in mask["areas"]:
            sx, sy = w / float(area["width"]), h / float(area["height"])
            pts = area["points"]
            draw.polygon([(pts[i] * sx, pts[i + 1] * sy) for i in range(0, len(pts), 2)], fill=255)
        return out
    if image is None:
        raise ValueError("mask image missing")
    grey = image.convert("RGBA")
    # a transparent PNG mask: painted (opaque) pixels are the region; else luminance decides
    alpha_low, _ = cast(tuple[int, int], grey.getchannel("A").getextrema())  # the most transparent pixel
    alpha = grey.getchannel("A") if alpha_low < 255 else grey.convert("L")
    alpha = alpha.resize(size, Image.Resampling.NEAREST)
    return alpha.point(lambda v: 255 if v > MASK_THRESHOLD else 0)
