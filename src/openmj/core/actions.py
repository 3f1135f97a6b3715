"""Actions on a finished image → diffusion settings and canvas geometry (mj-prompt.md §13, docs/models.md).

Pure: sizes and strengths only. Each value is a named constant with the Midjourney behaviour it
imitates and why this number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Upscale (Subtle/Creative) doubles both sides [mj-prompt.md §5.3]. Subtle keeps detail: a light
# img2img pass over a Lanczos enlargement; Creative adds detail: more denoise (Fooocus: 0.382).
UPSCALE_SUBTLE_STRENGTH = 0.2
UPSCALE_CREATIVE_STRENGTH = 0.4
UPSCALE_FACTORS = (2, 4)  # APIXO's upscale types 2 and 3 are 2× and 4× HD (APIXO's Midjourney page)

# Vary (Subtle) / (Strong): img2img from the chosen image with new seeds (Fooocus 0.5 / 0.85).
VARY_SUBTLE_STRENGTH = 0.5
VARY_STRONG_STRENGTH = 0.85

# Enhance: re-render a draft at full quality with the same composition: img2img of the draft,
# enlarged to the full size, same seed and prompt; between an upscale (0.4) and Vary Subtle (0.5).
ENHANCE_STRENGTH = 0.45

# Zoom out / pan / make square: the new area is painted from scratch (strength 1.0); the mask
# is feathered only inside the new area so the seam blends while kept pixels stay exact.
OUTPAINT_STRENGTH = 1.0
OUTPAINT_FEATHER_PX = 8

ZOOM_MIN, ZOOM_MAX = 1.0, 2.0  # Custom Zoom 1.0–2.0 [mj-prompt.md §13]; EvoLink outpaint takes 1.1–2.0
PAN_MIN, PAN_MAX = 1.1, 3.0  # EvoLink mj-v7-pan scale 1.1–3.0, default 1.5 (≈ +50 % of the side)
PAN_DIRECTIONS = ("up", "down", "left", "right")


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    @property
    def corners(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.width, self.y + self.height


@dataclass(frozen=True)
class Canvas:
    """The output size and where the (possibly resized) source goes on it."""

    width: int
    height: int
    source: Box


def _snap(x: float, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


def zoom_canvas(width: int, height: int, scale: float) -> Canvas:
    """Zoom out keeps the output size: the source shrunk by 1/scale sits in the middle."""
    sw, sh = max(1, round(width / scale)), max(1, round(height / scale))
    return Canvas(width, height, Box((width - sw) // 2, (height - sh) // 2, sw, sh))


def pan_canvas(width: int, height: int, direction: str, scale: float, multiple: int = 8) -> Canvas:
    """The canvas grows on one side by (scale − 1) of that side; the source keeps its pixels."""
    if direction in ("left", "right"):
        new_w = max(width + multiple, _snap(width * scale, multiple))
        x = new_w - width if direction == "left" else 0
        return Canvas(new_w, height, Box(x, 0, width, height))
    new_h = max(height + multiple, _snap(height * scale, multiple))
    y = new_h - height if direction == "up" else 0
    return Canvas(width, new_h, Box(0, y, width, height))


def square_canvas(width: int, height: int, multiple: int = 8) -> Canvas:
    """Make Square: outpaint the short side so the image becomes 1:1, source centred."""
    side = _snap(max(width, height), multiple)
    side = max(side, width, height)
    return Canvas(side, side, Box((side - width) // 2, (side - height) // 2, width, height))


def upscale_size(width: int, height: int, factor: int) -> tuple[int, int]:
    return width * factor, height * factor


def img2img_steps(steps: int, strength: float) -> int:
    """diffusers runs int(steps × strength) steps in img2img; keep at least one real step."""
    return max(steps, math.ceil(1 / strength)) if strength > 0 else steps
