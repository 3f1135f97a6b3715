"""Test pictures, and a loopback server (tests/loopback.py) that serves them and logs every request."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw, ImageFilter

from tests.loopback import Handler, Loopback, Seen


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def square_on_black(
    size: tuple[int, int] = (256, 256), box: tuple[int, int, int, int] = (64, 64, 192, 192)
) -> Image.Image:
    im = Image.new("RGB", size, (0, 0, 0))
    im.paste((255, 255, 255), box)
    return im


def pattern(size: tuple[int, int] = (300, 200), seed: int = 0) -> Image.Image:
    """A picture with structure (stripes and a disc), so edges and placement are visible."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    arr[..., 1] = ((yy // 10) % 2 * 200).astype(np.uint8)
    arr[..., 2] = rng.integers(0, 255, (h, w), dtype=np.uint8)
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 4) ** 2
    arr[disc] = (250, 220, 30)
    return Image.fromarray(arr)


def drawing(kind: str = "buttocks") -> Image.Image:
    """Crude synthetic drawings (flat shapes, blurred). We cannot ship real explicit images;
    these happen to be classified by NudeNet's model, which is enough to exercise the decision."""
    if kind == "buttocks":
        im = Image.new("RGB", (320, 320), (200, 200, 200))
        d = ImageDraw.Draw(im)
        d.ellipse((20, 80, 170, 260), fill=(225, 175, 145))
        d.ellipse((150, 80, 300, 260), fill=(225, 175, 145))
        d.line((160, 90, 160, 250), fill=(150, 100, 90), width=4)
        return im.filter(ImageFilter.GaussianBlur(5))
    if kind == "belly":
        im = Image.new("RGB", (320, 320), (60, 90, 120))
        d = ImageDraw.Draw(im)
        d.rectangle((60, 0, 260, 320), fill=(230, 180, 150))
        d.ellipse((150, 150, 170, 170), fill=(150, 100, 90))
        return im.filter(ImageFilter.GaussianBlur(6))
    raise ValueError(kind)


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny file that claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class ImageServer(Loopback):
    """Serves `files` by path (anything else is a 404); `requests` lists the paths asked for."""

    def __init__(self, files: dict[str, tuple[bytes, str]] | None = None) -> None:
        super().__init__()
        self.files: dict[str, tuple[bytes, str]] = dict(files or {})
        self.start()

    @property
    def requests(self) -> list[str]:
        return self.paths()

    def answer(self, handler: Handler, seen: Seen) -> int:
        body, ctype = self.files.get(seen.path.split("?")[0], (b"", ""))
        if not ctype:
            return handler.send(404)
        return handler.send(200, body, ctype)

    def add(self, path: str, data: bytes, ctype: str = "image/png") -> str:
        self.files[path] = (data, ctype)
        return self.url(path)

    def close(self) -> None:
        self.stop()
