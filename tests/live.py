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
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from openmj.app import create_app
from openmj.config import Settings

TEST_SECRET = "test-secret-key"


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

    def __init__(self, settings: Settings, engine: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, engine)
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
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


class ServerProcess:
    """`openmj serve` as a real subprocess (for SIGKILL and CLI behaviour)."""

    def __init__(self, data_dir: Path, model: str, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "OPENMJ_SECRET_KEY": TEST_SECRET,
            "OPENMJ_ALLOW_PRIVATE_NETWORK": "1",
            "OPENMJ_HEARTBEAT_SECONDS": "0.2",
            "OPENMJ_REAPER_SECONDS": "0.5",
            "HF_HUB_OFFLINE": "1",
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
