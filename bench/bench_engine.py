"""Engine overhead: an imagine task through openmj ÷ the bare diffusers call doing the same work.

Same work on both sides: the `tiny` model (random weights, real StableDiffusionPipeline), CPU,
512×512, 4 images, 4 Euler steps, guidance 7.5, four CPU generators seeded s..s+3.

- bare: `StableDiffusionPipeline.from_pretrained(tiny)` with the Euler scheduler, as LocalEngine
  loads it; the timed part is the `pipe(...)` call alone.
- openmj, embedded: a real server on loopback (uvicorn in a thread, LocalEngine, in-process
  worker: `openmj serve`); a client in another process POSTs
  `{"model":"mj-v7","prompt":"a lighthouse --seed 1"}` and polls GET /v1/tasks/{id} every
  `--poll-ms` (several intervals: one timed task per interval per run); the time is POST sent →
  the poll that sees `completed`. The server-side time is the task's `duration` (started_at →
  finished_at: engine, PNG files, the database), split further with the stored timestamps, and
  the CPU time of every thread of the server while `LocalEngine.run` runs (Linux schedstat):
  the sampler's thread, the torch pool, and the rest (API, database driver, background loops).
- openmj, split (`--split`, on by default): `openmj serve --no-worker` and `openmj worker` as
  two processes on one SQLite data directory (docs/deployment.md), the same client.

Each side runs in its own subprocess(es) (so its peak RSS is its own), and only one side is
alive at a time: the runs alternate bare process, embedded server, split pair, bare… (each
loads the model, warms up once and times `--per-process` runs), so that load from other
processes on a shared machine falls on all alike. Run:

    HF_HUB_OFFLINE=1 python bench/bench_engine.py [--runs 5] [--poll-ms 20,250] [--no-split]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import sqlite3
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


def cpu_s() -> float:
    """This process's CPU time so far (all threads, user + system)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def thread_cpu() -> dict[int, float]:
    """On-CPU seconds of each thread of this process (Linux schedstat; {} elsewhere)."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return out


def split_cpu(before: dict[int, float], after: dict[int, float], sampler: int) -> dict[str, float]:
    """CPU seconds between two `thread_cpu` snapshots: the sampler's thread, the other Python
    threads (API loop, database driver threads, thread pools) and the native threads (torch's
    OpenMP pool: threads Python does not know)."""
    python = {t.native_id for t in threading.enumerate()} | {os.getpid()}
    out = {"sampler": 0.0, "python": 0.0, "native": 0.0}
    for tid, on in after.items():
        used = on - before.get(tid, 0.0)
        out["sampler" if tid == sampler else "python" if tid in python else "native"] += used
    return out


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
        makes it, through run_in_executor): on a busy 2-core machine the two can differ a lot."""
        out = {"call": self._call()}
        box: dict[str, float] = {}

        def call() -> None:  # the CPU split is read in the thread, while it still exists
            before = thread_cpu()
            box["call_thread"] = self._call()
            used = split_cpu(before, thread_cpu(), threading.get_native_id())
            box.update({f"{kind}_cpu": seconds for kind, seconds in used.items()})

        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
        return out | box

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

        self.data = data = Path(tempfile.mkdtemp(prefix="openmj-bench-engine-"))
        # the production queue timings (make_settings' defaults are tuned for fast tests)
        settings = make_settings(data, **PRODUCTION)
        engine = LocalEngine(PRESETS["tiny"], models_dir, device="cpu")
        t0 = time.perf_counter()
        engine.load()
        self.load_s = time.perf_counter() - t0
        self.server = LiveServer(settings, engine).__enter__()
        self.key = self.server.create_key(credits=1e9)
        # where the server-side time goes: wrap the engine call and the media writes (both are
        # instance attributes the worker calls, so openmj's own code is unchanged)
        self.spent: dict[str, float] = {}
        self.reset()
        engine.run = self._engine_run(engine.run)  # type: ignore[method-assign]
        media = self.server.runtime.media
        media.save_image = self._timed("save", media.save_image)

    def reset(self) -> None:
        self.spent = {"engine": 0.0, "save": 0.0, "sampler_cpu": 0.0, "python_cpu": 0.0, "native_cpu": 0.0}

    def _timed(self, name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - t

        return wrapper

    def _engine_run(self, fn: Any) -> Any:
        """The engine call, timed, with the CPU time of each kind of thread meanwhile."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before, t = thread_cpu(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent["engine"] += time.perf_counter() - t
                used = split_cpu(before, thread_cpu(), threading.get_native_id())
                for kind, seconds in used.items():
                    self.spent[f"{kind}_cpu"] += seconds

        return wrapper

    def stats(self, task_id: str) -> dict[str, float]:
        task = self.server.call(self.server.runtime.repo.get_task(task_id))
        return {"queued": task.started_at - task.created_at, **self.spent}

    def close(self) -> None:
        self.server.__exit__(None, None, None)
        shutil.rmtree(self.data, ignore_errors=True)


#: the production queue timings (tests.live.make_settings' defaults are tuned for fast tests)
PRODUCTION = {"heartbeat_seconds": 1.0, "reaper_seconds": 2.0, "lease_seconds": 30.0, "poll_seconds": 0.5}
PRODUCTION_ENV = {
    "OPENMJ_HEARTBEAT_SECONDS": "1.0",
    "OPENMJ_REAPER_SECONDS": "2.0",
    "OPENMJ_LEASE_SECONDS": "30.0",
    "OPENMJ_POLL_SECONDS": "0.5",
    "OPENMJ_LOG_LEVEL": "WARNING",
}


def poll_task(client: Any, poll_s: float) -> dict[str, Any]:
    """Submit PROMPT and poll until completed; the time a client sees, its CPU, the final task."""
    t, cpu0 = time.perf_counter(), cpu_s()
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
    return {
        "id": task_id,
        "wall": wall,
        "duration": float(body["duration"]),
        "polls": polls,
        "client_cpu": cpu_s() - cpu0,
        "load1": os.getloadavg()[0],
    }


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
            print(json.dumps(bare.once() | {"load1": os.getloadavg()[0]}), flush=True)
        elif cmd == "reset" and part == "openmj":
            served.reset()
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


class SplitPair:
    """`openmj serve --no-worker` + `openmj worker`: two processes, one SQLite data directory."""

    def __init__(self, models_dir: Path) -> None:
        from tests.live import ServerProcess

        self.data = Path(tempfile.mkdtemp(prefix="openmj-bench-split-"))
        (self.data / "models").mkdir()
        (self.data / "models" / "tiny").symlink_to(ensure_tiny_quiet(models_dir))
        env = {**PRODUCTION_ENV, "OPENMJ_TRANSLATION_MODEL": "none"}
        self.api = ServerProcess(self.data, "tiny", args=("--no-worker",), **env).start()
        self.url = self.api.url
        cli = [sys.executable, "-m", "openmj.cli"]
        create = [*cli, "keys", "create", "--data-dir", str(self.data), "--credits", "1e9"]
        out = subprocess.run(create, capture_output=True, text=True, check=True, env=self.api.env)
        self.key = out.stdout.strip().splitlines()[-1].strip()
        self.worker_log = (self.data / "worker.log").open("ab")
        worker = [*cli, "worker", "--data-dir", str(self.data), "--model", "tiny"]
        log = self.worker_log
        self.worker = subprocess.Popen(worker, env=self.api.env, stdout=log, stderr=subprocess.STDOUT)

    def stats(self, task_id: str) -> dict[str, float]:
        with contextlib.closing(sqlite3.connect(self.data / "openmj.db")) as db:
            created, started = db.execute(
                "SELECT created_at, started_at FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        return {"queued": started - created}

    def peak_rss_mib(self) -> float:
        total = 0.0
        for pid in (self.api.proc.pid if self.api.proc else None, self.worker.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                total += int(next(ln for ln in status if ln.startswith("VmHWM")).split()[1]) / 1024
            except (OSError, StopIteration, ValueError):
                pass
        return total

    def close(self) -> None:
        if self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        self.api.stop()
        self.worker_log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def ensure_tiny_quiet(models: Path) -> Path:
    """The tiny model at its "wide" widths (engines/local/tiny.py WIDTHS): the model this
    benchmark's ratios were first measured on, so runs stay comparable."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from openmj.engines.local.tiny import ensure_tiny

        folder = ensure_tiny(models, "wide")
    marker = folder / "WIDTHS"
    widths = marker.read_text().strip() if marker.exists() else "narrow"
    if widths != "wide":
        raise SystemExit(f"{folder} holds the {widths} tiny model; give --models-dir a new folder")
    return folder


def _client(url: str, key: str) -> Any:
    import httpx

    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def _bare_process(models: Path, runs: int) -> tuple[dict[str, Any], list[Any]]:
    child = _Child("bare", models)
    try:
        results = [child.ask("run") for _ in range(runs)]
        return child.info | child.finish(), results
    finally:
        child.kill()


def _embedded_process(models: Path, polls_ms: list[float], runs: int) -> tuple[dict[str, Any], list[Any]]:
    """One embedded server: a warm-up, then `runs` × one task per poll interval."""
    child = _Child("openmj", models)
    try:
        results = []
        with _client(child.info["url"], child.info["key"]) as client:
            poll_task(client, polls_ms[0] / 1000)  # warm-up
            for _ in range(runs):
                for poll_ms in polls_ms:
                    child.ask("reset")
                    seen = poll_task(client, poll_ms / 1000)
                    results.append(seen | child.ask(f"stats {seen['id']}") | {"poll_ms": poll_ms})
        return child.info | child.finish(), results
    finally:
        child.kill()


def _split_processes(models: Path, polls_ms: list[float], runs: int) -> tuple[dict[str, Any], list[Any]]:
    t0 = time.perf_counter()
    pair = SplitPair(models)
    try:
        results = []
        with _client(pair.url, pair.key) as client:
            poll_task(client, polls_ms[0] / 1000)  # warm-up (waits for the worker to load)
            load_s = time.perf_counter() - t0
            for _ in range(runs):
                for poll_ms in polls_ms:
                    seen = poll_task(client, poll_ms / 1000)
                    results.append(seen | pair.stats(seen["id"]) | {"poll_ms": poll_ms})
        return {"load_s": load_s, "peak_rss_mib": pair.peak_rss_mib()}, results
    finally:
        pair.close()


def run(
    runs: int = 5,
    poll_ms: float | list[float] = (20.0, 250.0),  # type: ignore[assignment]
    models_dir: Path | None = None,
    per_process: int = 1,
    split: bool = True,
) -> dict[str, Any]:
    """Alternate processes: bare, embedded, split, bare… each loads, warms up, times `per_process`
    runs (the servers: one task per poll interval per run).

    Only one measured side is alive at a time: an idle openmj server next to the bare call
    (its worker poll, its reaper) was enough to slow the bare call on 2 cores, because the torch
    threads of one job wait for each other at every operation.
    """
    polls = [float(poll_ms)] if isinstance(poll_ms, int | float) else [float(p) for p in poll_ms]
    sides = ["bare", "embedded"] + (["split"] if split else [])
    info: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="openmj-bench-models-") as tmp:
        models = models_dir or Path(tmp)
        ensure_tiny_quiet(models)  # build once, outside the measured processes
        started = time.time()
        for _ in range(max(1, -(-runs // per_process))):
            for side in sides:
                if side == "bare":
                    i, r = _bare_process(models, per_process)
                elif side == "embedded":
                    i, r = _embedded_process(models, polls, per_process)
                else:
                    i, r = _split_processes(models, polls, per_process)
                info[side].append(i)
                results[side] += r
        minutes = (time.time() - started) / 60
    out = {
        "runs": len(results["bare"]),
        "poll_ms": polls,
        "minutes": minutes,
        "info": info,
        "results": results,
    }
    out["markdown"] = table(out)
    return out


def _stats(vals: list[float]) -> tuple[float, float, float]:
    return statistics.median(vals), min(vals), max(vals)


def table(out: dict[str, Any]) -> str:
    res, info, polls = out["results"], out["info"], out["poll_ms"]
    bare = res["bare"]
    ref = [r["call_thread"] for r in bare]
    ref_med, ref_min, _ = _stats(ref)
    loads = [r["load1"] for side in res.values() for r in side]

    def ms(x: float) -> str:
        return f"{x * 1000:,.0f}"

    def med(rs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    def row(name: str, vals: list[float]) -> str:
        mid, lo, hi = _stats(vals)
        return f"| {name} | {ms(mid)} | {ms(lo)} | {ms(hi)} | {mid / ref_med:.2f} | {lo / ref_min:.2f} |"

    lines = [
        f"tiny model (wide), CPU ({os.cpu_count()} cores), {SIDE}×{SIDE}, {IMAGES} images, {STEPS} steps; "
        f"{out['runs']} runs per side, each process after one warm-up, sides alternating "
        f"({out['minutes']:.0f} min); 1-min load average during the runs: median "
        f"{statistics.median(loads):.1f}, {min(loads):.1f}–{max(loads):.1f}",
        "",
        "| measurement | median ms | min ms | max ms "
        "| ÷ bare on a thread (medians) | ÷ bare on a thread (minima) |",
        "|---|---|---|---|---|---|",
        row("bare `pipe(...)` call on the main thread", [r["call"] for r in bare]),
        row("bare `pipe(...)` call on a second thread, as openmj's worker calls it", ref),
    ]
    names = {
        "embedded": "openmj embedded (`openmj serve`)",
        "split": "openmj split (`serve --no-worker` + `worker`)",
    }
    for side in ("embedded", "split"):
        for p in polls if side in res else []:
            rs = [r for r in res[side] if r["poll_ms"] == p]
            name = f"{names[side]}, polls every {p:g} ms"
            lines.append(row(f"{name}: server-side `duration`", [r["duration"] for r in rs]))
            lines.append(row(f"{name}: client-observed", [r["wall"] for r in rs]))
    lines += [
        "",
        "Where the embedded server's time goes (medians; CPU: the server's threads while "
        "`LocalEngine.run` runs, and the client's while its task ran):",
        "",
        "| polls every | queue wait | `LocalEngine.run` | PNG writes (×4, parallel) | rest of `duration` "
        "| client-observed − `duration` | polls | sampler thread CPU | torch pool CPU "
        "| other server threads CPU (API, DB, loops) | client CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in polls:
        rs = [r for r in res["embedded"] if r["poll_ms"] == p]
        rest = statistics.median(r["duration"] - r["engine"] - r["save"] for r in rs)
        outside = statistics.median(r["wall"] - r["duration"] for r in rs)
        lines.append(
            f"| {p:g} ms | {ms(med(rs, 'queued'))} | {ms(med(rs, 'engine'))} | {ms(med(rs, 'save'))} "
            f"| {ms(rest)} | {ms(outside)} | {med(rs, 'polls'):.0f} | {ms(med(rs, 'sampler_cpu'))} "
            f"| {ms(med(rs, 'native_cpu'))} | {ms(med(rs, 'python_cpu'))} | {ms(med(rs, 'client_cpu'))} |"
        )
    lines.append(
        f"| bare call on a thread | | {ms(ref_med)} | | | | | {ms(med(bare, 'sampler_cpu'))} "
        f"| {ms(med(bare, 'native_cpu'))} | {ms(med(bare, 'python_cpu'))} | |"
    )
    if "split" in res:
        lines += [
            "",
            "Split deployment (medians): the queue wait is the worker's idle poll (0.5 s: on SQLite "
            "a submission in another process cannot wake it).",
            "",
            "| polls every | queue wait | `duration` | client-observed |",
            "|---|---|---|---|",
        ]
        for p in polls:
            rs = [r for r in res["split"] if r["poll_ms"] == p]
            lines.append(
                f"| {p:g} ms | {ms(med(rs, 'queued'))} | {ms(med(rs, 'duration'))} | {ms(med(rs, 'wall'))} |"
            )
    labels = {
        "bare": "bare pipeline",
        "embedded": "openmj embedded (API + worker + engine)",
        "split": "openmj split (API + worker processes, together)",
    }
    lines += ["", "| process | peak RSS MiB | import + model load s |", "|---|---|---|"]
    for side, rows in info.items():
        rss = max(i["peak_rss_mib"] for i in rows)
        lines.append(f"| {labels[side]} | {rss:,.0f} | {statistics.median(i['load_s'] for i in rows):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side (after one warm-up)")
    ap.add_argument("--poll-ms", default="20,250", help="client poll intervals, comma-separated")
    ap.add_argument("--per-process", type=int, default=1, help="timed runs per started process")
    ap.add_argument("--no-split", action="store_true", help="leave out the split deployment")
    ap.add_argument("--models-dir", type=Path, default=None, help="where the tiny model is (built if absent)")
    ap.add_argument("--part", choices=("bare", "openmj"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.part:
        child(args.part, args.models_dir)
    else:
        polls = [float(p) for p in str(args.poll_ms).split(",") if p.strip()]
        print(run(args.runs, polls, args.models_dir, args.per_process, not args.no_split)["markdown"])


if __name__ == "__main__":
    main()
