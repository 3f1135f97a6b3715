"""A real HTTP(S) server on loopback for the openmj.net tests, and the images it serves.

It listens on a dual-stack socket bound to ``::`` (IPV6_V6ONLY off), so 127.0.0.1, 127.0.0.2,
0.0.0.0, ::1 and ::ffff:127.0.0.1 all reach it: when a test says a URL was "never fetched",
the request log proves it, whichever loopback spelling the URL used.

(Named net_loopback, not loopback, so it cannot collide with another test folder's helper.)
"""

from __future__ import annotations

import gzip
import io
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

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
# the server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackServer:
    tls: ssl.SSLContext | None = None
    log: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def start(self) -> LoopbackServer:
        outer = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True

            def server_bind(self) -> None:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                super().server_bind()

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                if outer.tls is not None:
                    sock.settimeout(5)
                    sock = outer.tls.wrap_socket(sock, server_side=True)
                return sock, addr

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up on purpose (size limits) are expected here

        class Handler(_Handler):
            server_obj = outer

        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self.httpd = Server(("::", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [s.path for s in self.log]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_obj: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/octet-stream", **hdrs: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:  # noqa: C901 - one route table, read top to bottom
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server_obj.log.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        images = {
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
        if path in images:
            data, ctype = images[path]
            return self._send(200, data, ctype)
        if path.startswith("/redirect/"):  # /redirect/N -> /redirect/N-1 -> ... -> /png
            n = int(path.rsplit("/", 1)[1])
            return self._send(302, Location="/png" if n <= 1 else f"/redirect/{n - 1}")
        if path == "/redirect-to":
            return self._send(int(query.get("status", ["302"])[0]), Location=query["url"][0])
        if path == "/redirect-no-location":
            return self._send(302)
        if path == "/big-declared":  # says 11 MB; a client that believes it never reads a byte
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            self.wfile.write(PNG)
            time.sleep(3)  # then hang: only the Content-Length check can end this quickly
            return None
        if path == "/big-chunked":  # 11 MB, chunked, no length given
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = PNG + bytes(256 * 1024 - len(PNG))
            for _ in range(BIG // len(piece) + 1):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path == "/big-close":  # 11 MB, no length, end of body = connection close
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PNG + bytes(BIG))
            self.close_connection = True
            return None
        if path == "/short-body":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG) + 1000))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PNG)
            self.close_connection = True
            return None
        if path == "/gzip":
            return self._send(200, gzip.compress(PNG), "image/png", Content_Encoding="gzip")
        if path == "/slow":  # no headers for 3 s
            time.sleep(3)
            return self._send(200, PNG, "image/png")
        if path == "/trickle":  # headers at once, then a byte every 50 ms: only a total limit helps
            self.send_response(200)
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            for b in PNG:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if path == "/status":
            return self._send(int(query["code"][0]), b"status body")
        if path == "/hook":
            return self._send(200, b'{"ok":true}', "application/json")
        if path == "/hook-204":
            return self._send(204)
        if path == "/hook-trickle":  # the status line and headers a byte every 50 ms
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 60 + b"\r\n\r\n":
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if path == "/hook-slow":
            time.sleep(3)
            return self._send(200, b"{}")
        return self._send(404, b"not found", "text/plain")


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
