"""The 2×2 grid image Midjourney shows for a 4-image job."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

GRID_NAME = "grid.png"


def grid_size(images: Sequence[Image.Image]) -> tuple[int, int]:
    """The size `make_grid` gives these images, without making it."""
    return 2 * max(im.width for im in images), 2 * max(im.height for im in images)


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Images 1–4 left to right, top to bottom (U1 top-left … U4 bottom-right), as in Midjourney."""
    if not images:
        raise ValueError("no images for a grid")
    w = max(im.width for im in images)
    h = max(im.height for im in images)
    mode = "RGBA" if any(im.mode == "RGBA" for im in images) else "RGB"
    grid = Image.new(mode, (2 * w, 2 * h), (0, 0, 0, 0) if mode == "RGBA" else (0, 0, 0))
    for i, im in enumerate(images[:4]):
        grid.paste(im.convert(mode), ((i % 2) * w, (i // 2) * h))
    return grid
