"""A visible watermark (kie's waterMark field): the text in the bottom-right corner."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

WATERMARK_MAX_CHARS = 64
WATERMARK_HEIGHT_FRACTION = 0.04  # text height ≈ 4 % of the image height, readable but small


def watermark(image: Image.Image, text: str) -> Image.Image:
    text = text[:WATERMARK_MAX_CHARS]
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, int(out.height * WATERMARK_HEIGHT_FRACTION))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    margin = max(4, size // 2)
    xy = (out.width - w - margin - left, out.height - h - margin - top)
    draw.rectangle(
        (xy[0] - 3 + left, xy[1] - 3 + top, xy[0] + w + 3 + left, xy[1] + h + 3 + top), fill=(0, 0, 0, 96)
    )
    draw.text(xy, text, font=font, fill=(255, 255, 255, 200))
    merged = Image.alpha_composite(out, layer)
    return merged if image.mode == "RGBA" else merged.convert("RGB")
