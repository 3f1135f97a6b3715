"""`openmj serve`'s HTTP server: uvicorn, with a drain before it stops (docs/deployment.md,
"Stopping a node"). The first SIGTERM or SIGINT starts `app.drain` while requests are still
answered (/readyz 503); once it returns, uvicorn stops listening, finishes the open requests and
runs the app's shutdown, which hands any task still running back to the queue. A second signal
stops at once, as uvicorn alone would."""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn
from fastapi import FastAPI

from openmj.app import Runtime, drain
from openmj.config import Settings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime
        self._drain: asyncio.Future[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        rt = self.runtime
        if self._drain is None and not self.should_exit and rt.ready and rt.loop is not None:
            # a signal handler runs between two steps of the loop's own thread: hand over
            rt.loop.call_soon_threadsafe(self._start_drain)
            self._drain = rt.loop.create_future()  # marks "drain asked" until _start_drain runs
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        s = self.runtime.settings
        self._drain = asyncio.ensure_future(drain(self.runtime, s.drain_seconds, s.drain_notice_seconds))
        self._drain.add_done_callback(lambda _: setattr(self, "should_exit", True))


def serve(app: FastAPI, settings: Settings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=20,
    )
    DrainingServer(config, app.state.runtime).run()
