"""Rehosting: an upstream's results fetched (through openmj's network guard) the moment it reports
them, a few at a time per process, for the worker to store as openmj's own media."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from openmj.media.video import Clip, decode_mp4
from openmj.net import ImageFetchError, NetPolicy, fetch_bytes

MAX_CLIP_BYTES = 200 * 1024 * 1024  # a 21 s HD clip is well under this
MAX_DOWNLOADS = 16  # results fetched from upstreams at once, per process
FETCH_BACKOFF_S = (0.5, 1.5)  # waits before the retries of a result that failed to download


class ResultMissing(Exception):
    """A result link that expired or does not answer with a picture or clip (the upstream's fault)."""


class Downloads:
    def __init__(self, net: NetPolicy) -> None:
        self.net = net
        self._slots = threading.BoundedSemaphore(MAX_DOWNLOADS)

    def image(self, url: str, alpha: bool = False) -> Image.Image:
        try:
            data = self._fetch(url, self.net)
            return Image.open(io.BytesIO(data)).convert("RGBA" if alpha else "RGB")
        except Exception as exc:  # a link that expired or does not answer with an image
            raise ResultMissing(
                f"a result could not be fetched from the upstream ({type(exc).__name__})"
            ) from exc

    def clip(self, url: str) -> Clip:
        """An upstream MP4, decoded to frames (the worker encodes and stores it as its own)."""
        try:
            data = self._fetch(url, dataclasses.replace(self.net, max_bytes=MAX_CLIP_BYTES))
            with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
                f.write(data)
                f.flush()
                return decode_mp4(Path(f.name))
        except Exception as exc:  # expired, not a video, or cut short
            raise ResultMissing(
                f"a clip could not be fetched from the upstream ({type(exc).__name__})"
            ) from exc

    def _fetch(self, url: str, policy: NetPolicy) -> bytes:
        """A few at a time per process (hundreds of tasks finishing together must not open
        thousands of connections), a transient failure (a refused connection, a time-out, a 5xx)
        retried twice before the upstream is failed."""
        for attempt in range(len(FETCH_BACKOFF_S) + 1):
            try:
                with self._slots:
                    data, _ = asyncio.run(fetch_bytes(url, policy))
                return data
            except ImageFetchError as err:
                transient = (
                    err.code == "timeout" or "download failed" in err.message or "HTTP 5" in err.message
                )
                if not transient or attempt == len(FETCH_BACKOFF_S):
                    raise
                time.sleep(FETCH_BACKOFF_S[attempt])
        raise AssertionError("unreachable")
