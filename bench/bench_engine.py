"""Engine overhead: an imagine task through openmj ÷ the bare diffusers call doing the same work.

Same work on both sides: the `tiny` model (random weights, real StableDiffusionPipeline), CPU,
512×512, 4 images, 4 Euler steps, guidance 7.5, four CPU generators seeded s..s+3.

- bare: `StableDiffusionPipeline.from_pretrained(tiny)` with the Euler scheduler, as LocalEngine
  loads it; the timed part is the `pipe(...)` call alone.
- openmj: a real server on loopback (uvicorn in a thread, LocalEngine, in-process worker);
  a client POSTs `{"model":"mj-v7","prompt":"a lighthouse --seed 1"}` and polls
  GET /v1/tasks/{id} every 20 ms; the time is POST sent → the poll that sees `completed`.
  The server-side time is the task's `duration` (started_at → finished_at: engine, PNG files,
  grid, the database), split further with the stored timestamps.

Each side runs in its own subprocess (so its peak RSS is its own), and only one is alive at a
time: by default the runs alternate bare process, openmj process, bare, openmj… (each loads the
model, warms up once and times one run), so that load from other processes on a shared machine
falls on both alike. Run:

    HF_HUB_OFFLINE=1 python bench/bench_engine.py [--runs 5] [--poll-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a lighthouse --seed 1"
SEED = 1
SIDE = 512
IMAGES = 4
STEPS = 4
GUIDANCE = 7.5  # the tiny preset's guidance; --s 100 (the default) leaves it unchanged


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Bare:
    """The bare pipeline call; the prompt is the text openmj sends for PROMPT."""

    def __init__(self, models_dir: Path) -> None:
        t0 = time.perf_counter()  # like LocalEngine.load: importing torch/diffusers counts
        import torch
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

        from openmj.core.mapping import AESTHETIC_SUFFIX
        from openmj.engines.local.tiny import ensure_tiny

        self.torch = torch
        torch.set_num_threads(max(1, os.cpu_count() or 1))  # as LocalEngine.load does on CPU
        folder = ensure_tiny(models_dir)
        pipe = StableDiffusionPipeline.from_pretrained(
            str(folder), dtype=torch.float32, safety_checker=None, requires_safety_checker=False
        )
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to("cpu")
        self.load_s = time.perf_counter() - t0
        self.text = f"a lighthouse, {AESTHETIC_SUFFIX}"  # what plan_generation makes of PROMPT

    def once(self) -> dict[str, float]:
        gens = [self.torch.Generator("cpu").manual_seed(SEED + i) for i in range(IMAGES)]
        t = time.perf_counter()
        out = self.pipe(
            prompt=[self.text] * IMAGES,
            height=SIDE,
            width=SIDE,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            generator=gens,
        )
        elapsed = time.perf_counter() - t
        assert len(out.images) == IMAGES and out.images[0].size == (SIDE, SIDE)
        return {"call": elapsed}

    def close(self) -> None:
        pass


class Served:
    """Imagine tasks through a real openmj server, timed as a client polling every poll_ms sees them."""

    def __init__(self, models_dir: Path, poll_ms: float) -> None:
        from openmj.engines.local.engine import LocalEngine
        from openmj.engines.local.presets import PRESETS
        from tests.live import LiveServer, make_settings

        data = Path(tempfile.mkdtemp(prefix="openmj-bench-engine-"))
        # the production queue timings (make_settings' defaults are tuned for fast tests)
        settings = make_settings(
            data, heartbeat_seconds=1.0, reaper_seconds=2.0, lease_seconds=30.0, poll_seconds=0.5
        )
        engine = LocalEngine(PRESETS["tiny"], models_dir, device="cpu")
        t0 = time.perf_counter()
        engine.load()
        self.load_s = time.perf_counter() - t0
        self.poll = poll_ms / 1000
        self.server = LiveServer(settings, engine).__enter__()
        self.client = self.server.client(self.server.create_key(credits=1e9))
        # where the server-side time goes: wrap the engine call and the media writes (both are
        # instance attributes the worker calls, so openmj's own code is unchanged)
        self.spent = {"engine": 0.0, "save": 0.0}
        engine.run = self._timed("engine", engine.run)  # type: ignore[method-assign]
        media = self.server.runtime.media
        media.save_image = self._timed("save", media.save_image)

    def _timed(self, name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - t

        return wrapper

    def once(self) -> dict[str, float]:
        self.spent = {"engine": 0.0, "save": 0.0}
        t = time.perf_counter()
        r = self.client.post("/v1/images/generations", json={"model": "mj-v7", "prompt": PROMPT})
        r.raise_for_status()
        task_id = r.json()["id"]
        polls = 0
        while True:
            time.sleep(self.poll)
            body = self.client.get(f"/v1/tasks/{task_id}").json()
            polls += 1
            if body["status"] == "completed":
                wall = time.perf_counter() - t
                break
            if body["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"task {task_id} {body['status']}: {body.get('error')}")
        assert len(body["results"]) == IMAGES
        task = self.server.call(self.server.runtime.repo.get_task(task_id))
        return {
            "wall": wall,
            "duration": float(body["duration"]),
            "queued": task.started_at - task.created_at,
            "polls": polls,
            "engine": self.spent["engine"],
            "save": self.spent["save"],
        }

    def close(self) -> None:
        self.client.close()
        self.server.__exit__(None, None, None)


def child(part: str, models_dir: Path, poll_ms: float) -> None:
    """One side in this process: set up, warm up, then one timed run per "run" line on stdin."""
    side: Bare | Served = Bare(models_dir) if part == "bare" else Served(models_dir, poll_ms)
    side.once()  # warm-up
    print(json.dumps({"ready": True, "load_s": side.load_s}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(json.dumps(side.once()), flush=True)
    side.close()
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}), flush=True)


class _Child:
    def __init__(self, part: str, models_dir: Path, poll_ms: float) -> None:
        cmd = [sys.executable, __file__, "--part", part, "--models-dir", str(models_dir)]
        cmd += ["--poll-ms", str(poll_ms)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OPENMJ_LOG_LEVEL": "WARNING"}
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return dict(json.loads(line))
        code = self.proc.wait()
        self.log.seek(0)
        raise RuntimeError(f"benchmark child exited with {code}:\n{self.log.read()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        out = self._read()
        self.proc.wait(60)
        return out


def _one_process(part: str, models: Path, poll_ms: float, runs: int) -> tuple[dict[str, Any], list[Any]]:
    """Start one side's process, time `runs` runs after its warm-up, stop it."""
    child = _Child(part, models, poll_ms)
    try:
        results = [child.run() for _ in range(runs)]
        return child.info | child.finish(), results
    finally:
        child.kill()


def run(
    runs: int = 5, poll_ms: float = 20.0, models_dir: Path | None = None, per_process: int = 1
) -> dict[str, Any]:
    """Alternate processes: bare, openmj, bare, openmj… each loads, warms up, times `per_process` runs.

    Only one measured process is alive at a time: an idle openmj server next to the bare call
    (its worker poll, its reaper) was enough to slow the bare call on 2 cores, because the torch
    threads of one job wait for each other at every operation.
    """
    with tempfile.TemporaryDirectory(prefix="openmj-bench-models-") as tmp:
        models = models_dir or Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from openmj.engines.local.tiny import ensure_tiny

            ensure_tiny(models)  # build once, outside the measured processes
        b_info: list[dict[str, Any]] = []
        o_info: list[dict[str, Any]] = []
        b_runs: list[dict[str, Any]] = []
        o_runs: list[dict[str, Any]] = []
        rounds = max(1, -(-runs // per_process))
        for _ in range(rounds):
            info, results = _one_process("bare", models, poll_ms, per_process)
            b_info.append(info)
            b_runs += results
            info, results = _one_process("openmj", models, poll_ms, per_process)
            o_info.append(info)
            o_runs += results
    b = {
        "load_s": statistics.median(i["load_s"] for i in b_info),
        "peak_rss_mib": max(i["peak_rss_mib"] for i in b_info),
        "times_s": [r["call"] for r in b_runs],
    }
    o = {
        "load_s": statistics.median(i["load_s"] for i in o_info),
        "peak_rss_mib": max(i["peak_rss_mib"] for i in o_info),
        "runs": o_runs,
    }
    n = len(b_runs)
    return {"bare": b, "openmj": o, "runs": n, "poll_ms": poll_ms, "markdown": table(b, o, n, poll_ms)}


def table(b: dict[str, Any], o: dict[str, Any], runs: int, poll_ms: float) -> str:
    med = statistics.median
    bare_s = med(b["times_s"])
    bare_min = min(b["times_s"])
    wall = med(r["wall"] for r in o["runs"])
    dur = med(r["duration"] for r in o["runs"])
    queued = med(r["queued"] for r in o["runs"])

    def ms(x: float) -> str:
        return f"{x * 1000:,.0f}"

    lines = [
        f"tiny model, CPU ({os.cpu_count()} cores), {SIDE}×{SIDE}, {IMAGES} images, {STEPS} steps; "
        f"median of {runs} runs per side, each in a fresh process after one warm-up, sides alternating; "
        f"client polls every {poll_ms:g} ms",
        "",
        "| measurement | median ms | min ms | max ms | ÷ bare (medians) | ÷ bare (minima) |",
        "|---|---|---|---|---|---|",
        f"| bare `pipe(...)` call | {ms(bare_s)} | {ms(bare_min)} | {ms(max(b['times_s']))} | 1.00 | 1.00 |",
    ]
    for name, vals in (
        ("openmj server-side `duration` (started_at → finished_at)", [r["duration"] for r in o["runs"]]),
        ("openmj client-observed (POST → poll sees `completed`)", [r["wall"] for r in o["runs"]]),
    ):
        lines.append(
            f"| {name} | {ms(med(vals))} | {ms(min(vals))} | {ms(max(vals))} | "
            f"{med(vals) / bare_s:.2f} | {min(vals) / bare_min:.2f} |"
        )
    engine = med(r["engine"] for r in o["runs"])
    save = med(r["save"] for r in o["runs"])
    lines += [
        "",
        "Where openmj's time goes (medians):",
        "",
        "| part | ms |",
        "|---|---|",
        f"| queue wait (created_at → started_at) | {ms(queued)} |",
        f"| `LocalEngine.run` (plan + pipeline call + RGB convert) | {ms(engine)} |",
        f"| writing 4 PNGs + the 2×2 grid PNG (`MediaStore.save_image` ×5) | {ms(save)} |",
        f"| rest of the server-side duration (claim, grid paste, DB, heartbeat) | "
        f"{ms(dur - engine - save)} |",
        f"| client-observed minus server-side (poll interval, HTTP) | {ms(wall - dur)} |",
        "",
        "| process | peak RSS MiB | import + model load s |",
        "|---|---|---|",
        f"| bare pipeline | {b['peak_rss_mib']:,.0f} | {b['load_s']:.2f} |",
        f"| openmj server (API + worker + engine, and the polling client) | {o['peak_rss_mib']:,.0f} | "
        f"{o['load_s']:.2f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side (after one warm-up)")
    ap.add_argument("--poll-ms", type=float, default=20.0, help="client poll interval")
    ap.add_argument("--per-process", type=int, default=1, help="timed runs per started process")
    ap.add_argument("--models-dir", type=Path, default=None, help="where the tiny model is (built if absent)")
    ap.add_argument("--part", choices=("bare", "openmj"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.part:
        child(args.part, args.models_dir, args.poll_ms)
    else:
        print(run(args.runs, args.poll_ms, args.models_dir, args.per_process)["markdown"])


if __name__ == "__main__":
    main()
