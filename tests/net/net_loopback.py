"""The openmj.net tests' server: tests/loopback.py's dual-stack HTTP(S) server answering from a
route table (images, redirects, oversized, slow and trickling bodies, callback hooks).
"""

from __future__ import annotations

import gzip
import io
import ssl
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests.loopback import Handler, Loopback, Seen

# --------------------------------------------------------------------------------------------
# images


def png_bytes(size: tuple[int, int] = (64, 48), color: Any = (200, 30, 40), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48), orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.new("RGB", size, (30, 200, 40))
    im.paste((250, 250, 250), (0, 0, size[0] // 2, size[1]))  # left half white: shows rotation
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def webp_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 40, 200)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


def animated_gif_bytes() -> bytes:
    """Three frames: red, green, blue. The first frame is the one that must come back."""
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def bmp_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "BMP")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, bit_depth: int = 1, rows: int | None = None) -> bytes:
    """A greyscale PNG whose IHDR says width x height. With ``rows=None`` the IDAT holds every
    row (all zeros; a real image that compresses to almost nothing); otherwise only ``rows``
    rows, so the file is tiny but truncated."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    row = b"\x00" + bytes((width * bit_depth + 7) // 8)
    comp = zlib.compressobj(9)
    count = height if rows is None else rows
    idat = b"".join(comp.compress(row) for _ in range(count)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


PNG = png_bytes()
PNG_RGBA = png_bytes(color=(10, 20, 30, 128), mode="RGBA")
JPEG = jpeg_bytes()
JPEG_ROTATED = jpeg_bytes((40, 20), orientation=6)  # stored 40x20, displayed 20x40
WEBP = webp_bytes()
GIF = animated_gif_bytes()
BMP = bmp_bytes()
BOMB_CLAIM = png_claiming(50_000, 50_000, rows=1)  # 2.5 gigapixels claimed, ~100 bytes
BOMB_REAL = png_claiming(8_000, 8_000)  # 64 megapixels, valid, ~10 KB: over our 40 MP cap
BIG = 11 * 1024 * 1024

# --------------------------------------------------------------------------------------------
# the server: tests/loopback.py's, answering from the route table below

IMAGES = {
    "/png": (PNG, "image/png"),
    "/rgba.png": (PNG_RGBA, "image/png"),
    "/jpeg": (JPEG, "image/jpeg"),
    "/rotated.jpg": (JPEG_ROTATED, "image/jpeg"),
    "/webp": (WEBP, "image/webp"),
    "/gif": (GIF, "image/gif"),
    "/png-as-text.jpg": (PNG, "text/plain"),  # magic bytes decide, not name or type
    "/bmp": (BMP, "image/bmp"),
    "/text": (b"hello, this is not an image\n" * 10, "image/png"),
    "/bomb-claim.png": (BOMB_CLAIM, "image/png"),
    "/bomb-real.png": (BOMB_REAL, "image/png"),
    "/truncated.png": (PNG[: len(PNG) // 2], "image/png"),
}


class LoopbackServer(Loopback):
    def answer(self, h: Handler, seen: Seen) -> int | None:  # noqa: C901 - one route table, top to bottom
        split = urlsplit(seen.path)
        path, query = split.path, parse_qs(split.query)
        if path in IMAGES:
            data, ctype = IMAGES[path]
            return h.send(200, data, ctype)
        if path.startswith("/redirect/"):  # /redirect/N -> /redirect/N-1 -> ... -> /png
            n = int(path.rsplit("/", 1)[1])
            return h.send(302, Location="/png" if n <= 1 else f"/redirect/{n - 1}")
        if path == "/redirect-to":
            return h.send(int(query.get("status", ["302"])[0]), Location=query["url"][0])
        if path == "/redirect-no-location":
            return h.send(302)
        if path == "/big-declared":  # says 11 MB; a client that believes it never reads a byte
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Content-Length", str(BIG))
            h.end_headers()
            h.wfile.write(PNG)
            time.sleep(3)  # then hang: only the Content-Length check can end this quickly
            return 200
        if path == "/big-chunked":  # 11 MB, chunked, no length given
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            piece = PNG + bytes(256 * 1024 - len(PNG))
            for _ in range(BIG // len(piece) + 1):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.write(b"0\r\n\r\n")
            return 200
        if path == "/big-close":  # 11 MB, no length, end of body = connection close
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(PNG + bytes(BIG))
            h.close_connection = True
            return 200
        if path == "/short-body":  # promises more than it sends, then hangs up
            h.send_response(200)
            h.send_header("Content-Length", str(len(PNG) + 1000))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(PNG)
            h.close_connection = True
            return 200
        if path == "/gzip":
            return h.send(200, gzip.compress(PNG), "image/png", Content_Encoding="gzip")
        if path == "/slow":  # no headers for 3 s
            time.sleep(3)
            return h.send(200, PNG, "image/png")
        if path == "/trickle":  # headers at once, then a byte every 50 ms: only a total limit helps
            h.send_response(200)
            h.send_header("Content-Length", str(len(PNG)))
            h.end_headers()
            for b in PNG:
                h.wfile.write(bytes([b]))
                h.wfile.flush()
                time.sleep(0.05)
            return 200
        if path == "/status":
            return h.send(int(query["code"][0]), b"status body")
        if path == "/hook":
            return h.send(200, b'{"ok":true}', "application/json")
        if path == "/hook-204":
            return h.send(204)
        if path == "/hook-trickle":  # the status line and headers a byte every 50 ms
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 60 + b"\r\n\r\n":
                h.wfile.write(bytes([b]))
                h.wfile.flush()
                time.sleep(0.05)
            return 200
        if path == "/hook-slow":
            time.sleep(3)
            return h.send(200, b"{}")
        return h.send(404, b"not found", "text/plain")


def make_tls_context(tmp: Path, hostname: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A throwaway CA and a server certificate for ``hostname`` (openssl command line).

    Returns the server context and the CA file a client must trust.
    """

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=openmj test CA",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={hostname}", "-keyout", "srv.key",
        "-out", "srv.csr")  # fmt: skip
    (tmp / "ext.cnf").write_text(f"subjectAltName=DNS:{hostname}\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "srv.pem")  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "srv.pem", tmp / "srv.key")
    return ctx, tmp / "ca.pem"
