"""Parse-time benchmark for openmj.core.prompt (issue 3 item 6).

Run:  python bench/bench_prompt.py            (full run, ~20 s)
      python bench/bench_prompt.py --quick    (fewer samples)

Prints median and p99 per case in microseconds. Each sample times one ``parse`` call (errors
included: invalid prompts are timed up to their PromptError). Goal: typical prompts < 50 µs median.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmj.core.prompt import PromptError, parse  # noqa: E402

IMG = "https://cdn.discordapp.com/attachments/1/2/photo.png?ex=66&is=65"
IMG2 = "https://example.com/ref.jpg"

TYPICAL: list[tuple[str, str, str]] = [
    ("plain text", "a cinematic shot of a Maine Coon cat on a neon-lit balcony", "7"),
    (
        "text + 3 params",
        "A cinematic shot of a Maine Coon cat on a neon-lit balcony --ar 16:9 --s 500 --v 7",
        "7",
    ),
    (
        "text + 8 params",
        "portrait of an old fisherman, golden hour, 85mm --ar 2:3 --s 250 --c 10 --seed 1234 "
        "--no text, watermark --q 2 --style raw --exp 10",
        "7",
    ),
    ("image prompt + iw", f"{IMG} a sunset landscape in watercolor style --iw 1.5 --ar 16:9", "7"),
    ("sref + sw + p", "a neon city street in the rain --sref 2847583950 --sw 300 --p q9qrcqo --ar 21:9", "7"),
    ("oref + ow", f"a knight on a horse --oref {IMG2} --ow 200 --fast", "7"),
    ("V6 multi-prompt", "hot dog::1.5 mustard::0.5 --no bun --v 6", "7"),
    ("permutation x4", "a {red, green} bird in the {jungle, desert} --ar 3:2", "7"),
    ("invalid (range)", "a cat --chaos 150 --ar 16:9", "7"),
    ("invalid (unrecognized)", "a cat —s 1000 –v 5", "7"),
]

WORST: list[tuple[str, str, str]] = [
    ("6000-char text", ("lorem ipsum dolor sit amet " * 223)[:5990] + " --ar 3:2", "7"),
    ("40-job permutation", "{a,b,c,d,e} {1,2,3,4,5,6,7,8} cat in a {hat} --ar {3:2} --s 100", "7"),
    (
        "nested permutation",
        "A {sculpture, painting} of a {seagull {on a pier, on a beach}, poodle {on a sofa, in a "
        "truck}}. --ar 2:3",
        "7",
    ),
    ("deep braces 5000", "{" * 5000 + "x" + "}" * 5000, "7"),
    ("many groups (saturated count)", "{a,b} " * 1600, "7"),
    ("3000 x '::' on V7", "a" + "::" * 3000, "7"),
    ("1000 weights on V6", "cat::1 " * 850, "6"),
    ("2000 x '--'", "a " + "-- " * 2000, "7"),
    ("1000 unknown params", "a " + "--x " * 1450, "7"),
    ("1000 duplicate params", "a" + " --s 1" * 1000, "7"),
    ("100 image URLs", (IMG2 + " ") * 100 + "blend", "7"),
    ("10k dash run", "-" * 10_000, "7"),
]


def _once(text: str, version: str) -> bool:
    """One parse; True if the prompt was valid (an invalid prompt is timed up to its error)."""
    try:
        parse(text, version)
    except PromptError:
        return False
    return True


def _time_case(text: str, version: str, budget_s: float, min_samples: int) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    perf = time.perf_counter_ns
    while len(samples) < min_samples or time.perf_counter() < deadline:
        start = perf()
        _once(text, version)
        samples.append((perf() - start) / 1000)
        if len(samples) >= 200_000:
            break
    return samples


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter run")
    args = ap.parse_args()
    budget, minimum = (0.2, 50) if args.quick else (1.0, 200)
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'})")
    gc.collect()
    for title, cases in (("typical", TYPICAL), ("worst case", WORST)):
        print(f"\n{title}:\n{'case':34s} {'chars':>6s} {'samples':>8s} {'median µs':>10s} {'p99 µs':>10s}")
        for name, text, version in cases:
            for _ in range(20):  # warm-up
                _once(text, version)
            samples = _time_case(text, version, budget, minimum)
            print(
                f"{name:34s} {len(text):6d} {len(samples):8d} {statistics.median(samples):10.1f} "
                f"{_p99(samples):10.1f}"
            )


if __name__ == "__main__":
    main()
