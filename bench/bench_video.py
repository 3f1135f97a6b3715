"""Video overhead: a video task through openmj ÷ the bare diffusers call for the same frames.

Same work on both sides: the `tiny-video` model (random weights, real WanImageToVideoPipeline with
a first-last-frame transformer), CPU, one clip of 41 frames rendered at 192×128, 2 flow-matching
steps, guidance 1, seed 1.

- bare: the pipeline loaded with `from_pretrained` as the engine loads it; the timed part is the
  `pipe(...)` call alone (frames as PIL images, nothing written).
- openmj: a real server on loopback (uvicorn in a thread, LocalEngine with the tiny image and video
  models, in-process worker); a client POSTs kie's `mj_video` with a 600×400 start image inline
  and polls record-info every 50 ms; the time is POST sent → the poll that sees successFlag 1. That
  includes what a user gets on top of the pipeline: the start image checked at submit and fetched,
  the frames resampled to the 768×512 output, the H.264 MP4 (x264, CRF 20) and the WebP thumbnail
  written, the database. The server-side split (engine call vs writing the clip) is measured too.

The two sides alternate in one process (bare, openmj, bare, …), so load from elsewhere falls on
both alike. Run:

    HF_HUB_OFFLINE=1 python bench/bench_video.py [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_engine  # noqa: E402

SEED = 1
START = (600, 400)
OUTPUT = (768, 512)  # core.video.video_size(600, 400, "sd")
RENDER = (192, 128)  # the tiny preset renders at a quarter of the side
FRAMES = 41
PROMPT = "waves rolling in"


def start_image() -> Any:
    import numpy as np
    from PIL import Image

    x = np.linspace(0, 255, START[0], dtype=np.float32)
    row = np.stack([255 - x, np.full_like(x, 60), x], axis=-1)
    return Image.fromarray(np.repeat(row[None], START[1], axis=0).astype(np.uint8))


class Bare:
    def __init__(self, models_dir: Path) -> None:
        import torch

        from openmj.engines.local.tiny_video import ensure_tiny_video
        from openmj.engines.local.video import MOTION_WORDS, NEGATIVE, fit
        from openmj.engines.local.video_pipeline import load_video_pipeline

        t0 = time.perf_counter()
        self.pipe = load_video_pipeline(str(ensure_tiny_video(models_dir)), "cpu")
        self.load_s = time.perf_counter() - t0
        more, less = MOTION_WORDS["low"]
        self.kwargs = {
            "image": fit(start_image(), RENDER),
            "prompt": [f"{PROMPT}, {more}"],
            "negative_prompt": [f"{NEGATIVE}, {less}"],
            "width": RENDER[0],
            "height": RENDER[1],
            "num_frames": FRAMES,
            "num_inference_steps": 2,
            "guidance_scale": 1.0,
            "output_type": "pil",
        }
        self.torch = torch

    def once(self) -> float:
        gen = [self.torch.Generator("cpu").manual_seed(SEED)]
        t = time.perf_counter()
        with self.torch.inference_mode():
            frames = self.pipe(generator=gen, **self.kwargs).frames
        elapsed = time.perf_counter() - t
        assert len(frames[0]) == FRAMES
        return elapsed


class Served:
    def __init__(self, models_dir: Path) -> None:
        from openmj.engines.local.engine import LocalEngine
        from openmj.engines.local.presets import PRESETS, VIDEO_PRESETS
        from tests.live import LiveServer, make_settings

        data = Path(tempfile.mkdtemp(prefix="openmj-bench-video-"))
        settings = make_settings(
            data,
            video_model="tiny-video",
            seed=SEED,
            heartbeat_seconds=1.0,
            reaper_seconds=2.0,
            lease_seconds=30.0,
            poll_seconds=0.5,
        )
        engine = LocalEngine(PRESETS["tiny"], models_dir, device="cpu", video=VIDEO_PRESETS["tiny-video"])
        engine.load()
        self.server = LiveServer(settings, engine).__enter__()
        self.key = self.server.create_key(credits=1e9)
        self.spent = {"engine": 0.0, "write": 0.0}
        engine.run = self._timed("engine", engine.run)  # type: ignore[method-assign]
        worker = self.server.runtime.workers[0]
        worker._save_clips = self._timed("write", worker._save_clips)
        buf = io.BytesIO()
        start_image().save(buf, format="PNG")
        self.body = {
            "taskType": "mj_video",
            "prompt": PROMPT,
            "fileUrl": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "motion": "low",
            "videoBatchSize": 1,
        }

    # the same instrumentation as the engine benchmark: wrap an instance's method, sum its time
    _timed = bench_engine.Served._timed

    def once(self) -> dict[str, float]:
        import httpx

        self.spent = {"engine": 0.0, "write": 0.0}
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=60) as client:
            t = time.perf_counter()
            r = client.post("/api/v1/mj/generate", json=self.body)
            task_id = r.json()["data"]["taskId"]
            while True:
                time.sleep(0.05)
                data = client.get("/api/v1/mj/record-info", params={"taskId": task_id}).json()["data"]
                if data["successFlag"] != 0:
                    break
            wall = time.perf_counter() - t
        assert data["successFlag"] == 1, data
        return {"wall": wall, **self.spent}

    def close(self) -> None:
        self.server.__exit__(None, None, None)


def run(runs: int = 3) -> dict[str, Any]:
    models = Path(tempfile.mkdtemp(prefix="openmj-bench-video-models-"))
    bare, served = Bare(models), Served(models)
    try:
        bare.once()  # warm-up both
        served.once()
        bare_s, openmj = [], []
        for _ in range(runs):
            bare_s.append(bare.once())
            openmj.append(served.once())
    finally:
        served.close()
    b = statistics.median(bare_s)
    o = {k: statistics.median(r[k] for r in openmj) for k in openmj[0]}
    rows = [
        f"| | median of {runs} | ratio to bare |",
        "|---|---|---|",
        f"| bare `pipe(...)`: 41 frames at 192×128, 2 steps | {b:.2f} s | 1.00 |",
        f"| openmj task, POST → record-info successFlag 1 | {o['wall']:.2f} s | {o['wall'] / b:.2f} |",
        f"| of which the engine call (pipeline, resample to 768×512, end pinning) | {o['engine']:.2f} s "
        f"| {o['engine'] / b:.2f} |",
        f"| of which writing the MP4 (768×512, x264) and thumbnail | {o['write']:.2f} s "
        f"| {o['write'] / b:.2f} |",
    ]
    return {"bare_s": bare_s, "openmj": openmj, "ratio": o["wall"] / b, "markdown": "\n".join(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out = run(args.runs)
    print(out["markdown"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
