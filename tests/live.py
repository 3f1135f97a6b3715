"""A real openmj server on loopback for tests: uvicorn in a thread, or a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from openmj.app import create_app
from openmj.config import Settings
from tests.http_client import HTTP, SSL

TEST_SECRET = "test-secret-key"
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 60, interval: float = 0.05, what: str = "") -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return that.

    The one poll loop of the suite: `timeout` is a safety net for a broken build, never the thing a
    test measures, so it can be generous; a test that needs "not before" asserts that separately.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], Awaitable[T]], timeout: float = 60, interval: float = 0.05, what: str = ""
) -> T:
    """`wait_until` for code on an event loop: the predicate is awaited, the loop is not blocked."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or predicate}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": free_port(),
        "model": "tiny",
        "video_model": "none",  # video servers opt in (tests/test_video.py): it changes the buttons
        # translation and Describe opt in too (tests/test_words.py): loading them costs every server
        "translation_model": "none",
        "caption_model": "none",
        "secret_key": TEST_SECRET,
        "allow_private_network": True,
        "heartbeat_seconds": 0.2,
        "reaper_seconds": 0.5,
        "lease_seconds": 5.0,
        "poll_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


class LiveServer:
    """create_app() served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, engine: Any, translator: Any = None) -> None:
        self.settings = settings
        self.app = create_app(settings, engine, translator)
        self.url = settings.resolved_public_url
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def __enter__(self) -> LiveServer:
        self._thread.start()
        wait_healthy(self.url, 60)
        self.loop = self.runtime.loop
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on the server's event loop (to reach its runtime objects)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def create_key(self, credits: float = 1000.0, **kw: Any) -> str:
        from openmj.accounts import create_key

        return self.call(create_key(self.runtime.repo, credits=credits, **kw)).secret  # type: ignore[no-any-return]

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=SSL, **kw)


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    def healthy() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            return HTTP.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout, 0.1, f"{url} to be healthy")


class ServerProcess:
    """`openmj serve` as a real subprocess (for SIGKILL and CLI behaviour)."""

    def __init__(
        self, data_dir: Path, model: str, port: int | None = None, *, args: tuple[str, ...] = (), **env: str
    ) -> None:
        self.data_dir = data_dir
        self.args = args  # more `openmj serve` flags, e.g. ("--no-worker",)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "OPENMJ_SECRET_KEY": TEST_SECRET,
            "OPENMJ_ALLOW_PRIVATE_NETWORK": "1",
            "OPENMJ_HEARTBEAT_SECONDS": "0.2",
            "OPENMJ_REAPER_SECONDS": "0.5",
            "HF_HUB_OFFLINE": "1",
            "OPENMJ_TRANSLATION_MODEL": "none",  # opted into where a test is about it
            **env,
        }
        self.model = model
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{self.port}.log"

    def start(self, timeout: float = 120) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openmj.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--model",
                self.model,
                *self.args,
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(self.url, timeout, self.proc)
        except Exception:
            self.kill()
            raise RuntimeError(self.log.read_text()[-4000:]) from None
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
