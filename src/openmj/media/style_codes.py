"""Numeric --sref codes → a deterministic style image.

Midjourney's style codes index its own style space, which open models do not have. openmj turns
a code into a reproducible reference picture (a palette, a light direction and a texture drawn
from a generator seeded by the code) and feeds it to the style adapter like an image URL: the same
code always gives the same style, different codes give different styles.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageFilter

STYLE_IMAGE_SIDE = 256


def style_image(code: str) -> Image.Image:
    rng = random.Random(int(code) if code.isdigit() else code)
    side = STYLE_IMAGE_SIDE
    palette = [
        np.array([rng.randrange(256) for _ in range(3)], dtype=float) for _ in range(rng.randint(2, 5))
    ]
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:side, 0:side] / side
    t = (np.cos(angle) * xx + np.sin(angle) * yy) % 1.0
    bands = len(palette) - 1
    idx = np.minimum((t * bands).astype(int), bands - 1)
    frac = (t * bands - idx)[..., None]
    stacked = np.stack(palette)
    img = stacked[idx] * (1 - frac) + stacked[idx + 1] * frac
    noise_rng = np.random.default_rng(rng.randrange(2**32))
    grain = noise_rng.normal(0, rng.uniform(4, 40), (side, side, 1))
    out = Image.fromarray(np.clip(img + grain, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
    return out
