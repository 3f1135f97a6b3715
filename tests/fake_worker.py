"""`openmj worker` on the fake engine (tests/fake_engine.py), as a real process: the worker node of
openmj.app (`run_worker_node`: registry, drain on SIGTERM, reaper, callbacks) with only the
picture-making replaced, so tests can SIGTERM and SIGKILL workers without loading a model.

    python -m tests.fake_worker      # settings from OPENMJ_* exactly as `openmj worker` reads them

FAKE_MODEL (a preset name, default tiny), FAKE_STEPS and FAKE_STEP_SECONDS shape the fake engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.live import TEST_SECRET, wait_until


class FakeWorkerProcess:
    """One `python -m tests.fake_worker` process on a shared database."""

    def __init__(self, data_dir: Path, database_url: str, *, model: str = "tiny", **env: str) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "OPENMJ_DATA_DIR": str(data_dir),
            "OPENMJ_DATABASE_URL": database_url,
            "OPENMJ_MODEL": model,
            "FAKE_MODEL": model,
            "OPENMJ_SECRET_KEY": TEST_SECRET,
            "OPENMJ_ALLOW_PRIVATE_NETWORK": "1",
            "OPENMJ_HEARTBEAT_SECONDS": "0.2",
            "OPENMJ_REAPER_SECONDS": "0.5",
            "OPENMJ_POLL_SECONDS": "0.2",
            "OPENMJ_VIDEO_MODEL": "none",
            "OPENMJ_CAPTION_MODEL": "none",
            "OPENMJ_TRANSLATION_MODEL": "none",
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"fake-worker-{secrets.token_hex(4)}.log"  # one per process: its own "ready"

    def start(self, timeout: float = 120) -> FakeWorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fake_worker"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout, 0.05, "the fake worker to start")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"fake worker exited with {self.proc.returncode}: {self.output()[-3000:]}")
        return "openmj ready" in self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
            self.wait(10)

    def stop(self, timeout: float = 60) -> int | None:
        if not self.alive:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def main() -> None:
    from openmj.app import run_worker_node
    from openmj.config import Settings
    from tests.fake_engine import FakeEngine

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine: Any = FakeEngine(
        os.environ.get("FAKE_MODEL", "tiny"),
        steps=int(os.environ.get("FAKE_STEPS", "4")),
        step_seconds=float(os.environ.get("FAKE_STEP_SECONDS", "0.05")),
    )
    engine.load()
    asyncio.run(run_worker_node(Settings(), engine))


if __name__ == "__main__":
    main()
