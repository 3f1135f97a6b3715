"""MP4 clips: H.264 that browsers play, thumbnails, and reading a stored clip back (PyAV).

PyAV ships its own FFmpeg, so nothing is needed on the system. It is imported when a clip is
written or read (worker side); the API process only serves the files.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, NamedTuple

from PIL import Image

#: x264's constant-quality scale: 18 is visually lossless for most footage; a virtual upscale
#: (resampled frames, more pixels) is written finer, as Midjourney's upscale is a "higher-quality .mp4"
CRF = 20
CRF_UPSCALED = 17
#: about twice as fast as x264's default "medium" for a few percent more bytes at the same CRF:
#: on a CPU-only server the encoder runs as long as a tiny model's sampler
X264_PRESET = "veryfast"
THUMBNAIL_SIDE = 640  # Midjourney's video thumbnails are 640 px (…_640_N.webp)


class Clip(NamedTuple):
    frames: list[Image.Image]
    fps: float


def encode_mp4(frames: Sequence[Image.Image], fps: float, *, crf: int = CRF) -> bytes:
    """H.264 in yuv420p (the pixel format every browser decodes) with the moov atom first
    (`faststart`), so playback starts before the download ends."""
    import av

    if not frames:
        raise ValueError("a clip needs at least one frame")
    width, height = frames[0].size
    # faststart rewrites the file after the last frame, which needs a real (seekable) file
    fd, name = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        with av.open(name, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": X264_PRESET}
            for image in frames:
                frame = av.VideoFrame.from_image(image.convert("RGB"))
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return Path(name).read_bytes()
    finally:
        Path(name).unlink(missing_ok=True)


def decode_mp4(source: Path | BinaryIO) -> Clip:
    """Every frame of a stored clip (a file, or its bytes in a file object) and its frame rate."""
    import av

    with av.open(str(source) if isinstance(source, Path) else source, mode="r") as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 24
        frames = [f.to_image() for f in container.decode(stream)]
    return Clip(frames=frames, fps=float(rate))


def thumbnail(frame: Image.Image) -> bytes:
    """A WebP poster of the clip's first frame, at most 640 px on its long side."""
    image = frame.convert("RGB")
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="WEBP", quality=85)
    return buf.getvalue()


def resample(frames: Sequence[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    """Frames resized to `size` (Lanczos); frames already that size are kept as they are."""
    return [f if f.size == size else f.resize(size, Image.Resampling.LANCZOS) for f in frames]
