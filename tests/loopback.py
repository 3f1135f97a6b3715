"""The one HTTP(S) server of the test suite: real sockets on loopback, every request logged.

It listens on a dual-stack socket bound to ``::`` (IPV6_V6ONLY off), so 127.0.0.1, 127.0.0.2,
0.0.0.0, ::1 and ::ffff:127.0.0.1 all reach it: when a test says a URL was "never fetched" or
"never called", the log proves it, whichever loopback spelling the URL used.

What it answers is up to `answer`: a subclass (or the ``answer`` argument) gets the handler and
the logged request and writes the response. Three are used: the openmj.net route table
(tests/net/net_loopback.py), files (tests/images.py) and callback receivers (`Receiver`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Seen:
    """One request as the server got it, and the status it answered (None: no normal answer)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.time() when it arrived
    header_list: list[tuple[str, str]] = field(default_factory=list)  # repeated headers kept
    status: int | None = None
    finished: bool = False  # the handler is done (answered, or gave up on a client that hung up)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_obj: Loopback

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(
        self, status: int, body: bytes = b"", ctype: str = "application/octet-stream", **hdrs: str
    ) -> int:
        """A complete answer; ``Content_Encoding="gzip"`` becomes the header ``Content-Encoding``."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)
        return status

    def do_GET(self) -> None:
        self.server_obj._handle(self)

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET


class Loopback:
    def __init__(
        self,
        answer: Callable[[Handler, Seen], int | None] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls
        self.log: list[Seen] = []
        self.sni: list[str | None] = []
        self.lock = threading.Lock()
        self.active = 0  # requests being answered right now
        self.max_active = 0
        self.connections: set[socket.socket] = set()  # open, for stop() to cut
        if answer is not None:
            self.answer = answer  # type: ignore[method-assign]

    def answer(self, handler: Handler, seen: Seen) -> int | None:
        return handler.send(404, b"not found", "text/plain")

    def _handle(self, handler: Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        items = list(handler.headers.items())
        seen = Seen(handler.command, handler.path, dict(items), body, time.time(), items)
        with self.lock:
            self.log.append(seen)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            seen.status = self.answer(handler, seen)
        finally:
            with self.lock:
                self.active -= 1
                seen.finished = True

    # ------------------------------------------------------------------ life
    def start(self) -> Self:
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
                with outer.lock:
                    outer.connections.add(sock)
                return sock, addr

            def shutdown_request(self, request: Any) -> None:
                with outer.lock:  # its handler is done: nothing left to cut at stop()
                    outer.connections.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up on purpose (size limits, time-outs) are expected here

        class BoundHandler(Handler):
            server_obj = outer

        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self.httpd = Server(("::", 0), BoundHandler)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop as a killed process would: kept-alive connections are cut too (a pooled client
        would otherwise go on being answered by their handler threads)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            connections, self.connections = self.connections, set()
        for sock in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what it saw
    def url(self, path: str, host: str = "127.0.0.1", scheme: str | None = None) -> str:
        return f"{scheme or ('https' if self.tls else 'http')}://{host}:{self.port}{path}"

    def hits(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.log if path is None or s.path == path]

    def paths(self) -> list[str]:
        return [s.path for s in self.hits()]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60, answered: bool = False) -> list[Seen]:
        """The requests to `path` once there are at least `count` of them (`answered`: and each of
        them has had its answer, so its `status` is set; a handler that hangs on purpose never is)."""
        from tests.live import wait_until  # not at the top: tests.live imports the whole app

        def arrived() -> bool:
            hits = self.hits(path)
            return len(hits) >= count and (not answered or all(h.finished for h in hits))

        wait_until(arrived, timeout, what=f"{count} request(s) to {path}")
        return self.hits(path)


class Receiver(Loopback):
    """A callback receiver: each path answers the next status of its plan, the last one repeating
    (a path without a plan of its own gets a copy of `default`); a 3xx points at /landing.
    `delay` holds every answer that long, to see concurrency and ordering."""

    def __init__(self, default: list[int] | None = None, delay: float = 0.0) -> None:
        super().__init__()
        self.default = default or [200]
        self.plans: dict[str, list[int]] = {}
        self.delay = delay

    def wait_for(self, path: str, count: int = 1, timeout: float = 60, answered: bool = True) -> list[Seen]:
        """A receiver always answers: wait for the answers too, so each hit's `status` is final."""
        return super().wait_for(path, count, timeout, answered)

    def answer(self, handler: Handler, seen: Seen) -> int:
        with self.lock:
            plan = self.plans.setdefault(seen.path, list(self.default))
            status = plan.pop(0) if len(plan) > 1 else plan[0]
        if self.delay:
            time.sleep(self.delay)
        headers = {"Location": "/landing"} if 300 <= status < 400 else {}
        return handler.send(status, b"ok", "text/plain", **headers)
