"""A loopback HTTP server that serves test images (and records every request it gets)."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


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


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny file that claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class ImageServer:
    def __init__(self, files: dict[str, tuple[bytes, str]] | None = None) -> None:
        self.files: dict[str, tuple[bytes, str]] = dict(files or {})
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body, ctype = outer.files.get(self.path.split("?")[0], (b"", ""))
                if not ctype:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that stop reading (size limits) reset the connection: expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, data: bytes, ctype: str = "image/png") -> str:
        self.files[path] = (data, ctype)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
