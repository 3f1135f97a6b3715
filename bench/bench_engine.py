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
import threading
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
        """The call on the main thread, then the same call on a fresh thread (as openmj's worker
        makes it, through asyncio.to_thread): on a busy 2-core machine the two can differ a lot."""
        out = {"call": self._call()}
        box: list[float] = []
        thread = threading.Thread(target=lambda: box.append(self._call()))
        thread.start()
        thread.join()
        out["call_thread"] = box[0]
        return out

    def _call(self) -> float:
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
        return elapsed

    def close(self) -> None:
        pass


class Served:
    """A real openmj server (API + worker + LocalEngine in this process), instrumented.

    The client is another process (the benchmark's parent), as in a deployment: a client polling
    every 20 ms in the server's own process would compete with it for the interpreter.
    """

    def __init__(self, models_dir: Path) -> None:
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
        self.server = LiveServer(settings, engine).__enter__()
        self.key = self.server.create_key(credits=1e9)
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

    def stats(self, task_id: str) -> dict[str, float]:
        task = self.server.call(self.server.runtime.repo.get_task(task_id))
        return {"queued": task.started_at - task.created_at, **self.spent}

    def close(self) -> None:
        self.server.__exit__(None, None, None)


def poll_task(client: Any, poll_s: float) -> dict[str, Any]:
    """Submit PROMPT and poll until completed; the time a client sees, and the final task."""
    t = time.perf_counter()
    r = client.post("/v1/images/generations", json={"model": "mj-v7", "prompt": PROMPT})
    r.raise_for_status()
    task_id = r.json()["id"]
    polls = 0
    while True:
        time.sleep(poll_s)
        body = client.get(f"/v1/tasks/{task_id}").json()
        polls += 1
        if body["status"] == "completed":
            wall = time.perf_counter() - t
            break
        if body["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"task {task_id} {body['status']}: {body.get('error')}")
    assert len(body["results"]) == IMAGES
    return {"id": task_id, "wall": wall, "duration": float(body["duration"]), "polls": polls}


def child(part: str, models_dir: Path) -> None:
    """One side in this process, driven by lines on stdin; answers one JSON line each.

    bare: "run" → one timed call. openmj: "reset" → clear the counters; "stats ID" → the
    server-side split of that task. "quit" (or end of input) → peak RSS, and exit.
    """
    if part == "bare":
        bare = Bare(models_dir)
        bare.once()  # warm-up
        print(json.dumps({"load_s": bare.load_s}), flush=True)
    else:
        served = Served(models_dir)
        print(json.dumps({"load_s": served.load_s, "url": served.server.url, "key": served.key}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run" and part == "bare":
            print(json.dumps(bare.once()), flush=True)
        elif cmd == "reset" and part == "openmj":
            served.spent = {"engine": 0.0, "save": 0.0}
            print("{}", flush=True)
        elif cmd == "stats" and part == "openmj":
            print(json.dumps(served.stats(arg)), flush=True)
        else:
            break
    if part == "openmj":
        served.close()
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}), flush=True)


class _Child:
    def __init__(self, part: str, models_dir: Path) -> None:
        cmd = [sys.executable, __file__, "--part", part, "--models-dir", str(models_dir)]
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

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
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
    """Start one side's process, time `runs` runs after a warm-up, stop it."""
    import httpx

    child = _Child(part, models)
    try:
        if part == "bare":
            results = [child.ask("run") for _ in range(runs)]
        else:
            headers = {"Authorization": f"Bearer {child.info['key']}"}
            with httpx.Client(base_url=child.info["url"], headers=headers, timeout=60) as client:
                poll_task(client, poll_ms / 1000)  # warm-up
                results = []
                for _ in range(runs):
                    child.ask("reset")
                    seen = poll_task(client, poll_ms / 1000)
                    results.append(seen | child.ask(f"stats {seen['id']}"))
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
        "thread_times_s": [r["call_thread"] for r in b_runs],
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
    thr = b["thread_times_s"]
    lines.append(
        f"| bare `pipe(...)` call on a second thread, as openmj's worker calls it | {ms(med(thr))} | "
        f"{ms(min(thr))} | {ms(max(thr))} | {med(thr) / bare_s:.2f} | {min(thr) / bare_min:.2f} |"
    )
    for name, vals in (
        ("openmj server-side `duration` (started_at → finished_at)", [r["duration"] for r in o["runs"]]),
        ("openmj client-observed (POST → poll sees `completed`)", [r["wall"] for r in o["runs"]]),
    ):
        lines.append(
            f"| {name} | {ms(med(vals))} | {ms(min(vals))} | {ms(max(vals))} | "
            f"{med(vals) / bare_s:.2f} | {min(vals) / bare_min:.2f} |"
        )
    thr_s = med(thr)
    lines += [
        "",
        f"Engine overhead (medians): client-observed ÷ bare call = {wall / bare_s:.2f} "
        f"(bare on the main thread), {wall / thr_s:.2f} (bare on a second thread); "
        f"server-side duration ÷ bare call = {dur / bare_s:.2f} / {dur / thr_s:.2f}.",
    ]
    engine = med(r["engine"] for r in o["runs"])
    save = med(r["save"] for r in o["runs"])
    rest = med(r["duration"] - r["engine"] - r["save"] for r in o["runs"])
    outside = med(r["wall"] - r["duration"] for r in o["runs"])
    lines += [
        "",
        "Where openmj's time goes (medians):",
        "",
        "| part | ms |",
        "|---|---|",
        f"| queue wait (created_at → started_at) | {ms(queued)} |",
        f"| `LocalEngine.run` (plan + pipeline call + RGB convert) | {ms(engine)} |",
        f"| writing 4 PNGs + the 2×2 grid PNG (`MediaStore.save_image` ×5) | {ms(save)} |",
        f"| rest of the server-side duration (claim, grid paste, DB, heartbeat) | {ms(rest)} |",
        f"| client-observed minus server-side (poll interval, HTTP) | {ms(outside)} |",
        "",
        "| process | peak RSS MiB | import + model load s |",
        "|---|---|---|",
        f"| bare pipeline | {b['peak_rss_mib']:,.0f} | {b['load_s']:.2f} |",
        f"| openmj server (API + worker + engine) | {o['peak_rss_mib']:,.0f} | {o['load_s']:.2f} |",
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
        child(args.part, args.models_dir)
    else:
        print(run(args.runs, args.poll_ms, args.models_dir, args.per_process)["markdown"])


if __name__ == "__main__":
    main()
