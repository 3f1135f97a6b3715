"""Pathological inputs stay linear (issue 3 item 5), measured so that a loaded machine cannot fail it.

Two checks per case. The first counts work, not time: the Python lines the parser executes, which
are the same on every machine and under any load. Lines do not see work done inside one C call
(a slice, a regex), so the second times the parse with `time.thread_time()`, which only counts this
thread's CPU (not the time other processes hold the core), gc off, small and large runs interleaved.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from openmj.core.prompt import PromptError, parse

IMG = "https://cdn.example.com/a.png"

CASES: dict[str, Callable[[int], str]] = {
    "deep braces": lambda n: "{" * n + "x" + "}" * n,
    "deep braces with text": lambda n: "{a " * n + "}" * n,
    "many groups": lambda n: "{a,b} " * n,
    "many options": lambda n: "x {" + ",".join(["a"] * n) + "}",
    "escaped commas with spaces": lambda n: "x {a" + " " * n + "\\, b" * 10 + "}",
    "colons v7": lambda n: "a" + "::" * n,
    "weights v6": lambda n: "a::1 " * n,
    "double dashes": lambda n: "a " + "-- " * n,
    "unknown params": lambda n: "a " + "--x " * n,
    "duplicate params": lambda n: "a" + " --s 1" * n,
    "dash run": lambda n: "-" * (4 * n),
    "image urls": lambda n: (IMG + " ") * (n // 4 + 1) + "cat",
    "long digits": lambda n: "a --seed " + "1" * (4 * n),
    "long ratio": lambda n: "a --ar " + "1" * (2 * n) + ":" + "1" * (2 * n) + "x",
    "no list": lambda n: "a --no " + "x, " * n,
    "sref list": lambda n: "a --sref " + "1::2 " * n,
    "colon digits": lambda n: "a::" + "1" * (4 * n) + ".",
    "whitespace": lambda n: "a" + " \t\n" * n + "b",
}


def _parse(text: str, version: str) -> None:
    with contextlib.suppress(PromptError):
        parse(text, version)


def _lines(text: str, version: str) -> int:
    """Python lines executed by one parse (after a warm-up, so caches are filled)."""
    _parse(text, version)
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += event == "line"
        return local

    previous = sys.gettrace()  # a coverage tool's tracer, if any, is put back afterwards
    sys.settrace(lambda frame, event, arg: local)
    try:
        _parse(text, version)
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", ["7", "6"])
def test_linear_in_work(name: str, version: str) -> None:
    make = CASES[name]
    small, large = _lines(make(250), version), _lines(make(2_000), version)
    # 8× the input: linear work is 8× the lines, quadratic 64×; the count has no noise, so 16 is ample
    assert large <= 16 * small, f"{name}: {small} -> {large} lines (x{large / small:.1f})"


def _cpu_seconds(texts: list[str], version: str, rounds: int = 3) -> list[float]:
    """Best CPU time of each text over `rounds`, the texts interleaved so drift hits all alike."""
    best = [float("inf")] * len(texts)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for i, text in enumerate(texts):
                start = time.thread_time()
                _parse(text, version)
                best[i] = min(best[i], time.thread_time() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", ["7", "6"])
def test_linear_in_cpu_time(name: str, version: str) -> None:
    make = CASES[name]
    small, large = _cpu_seconds([make(2_000), make(32_000)], version)
    # 16× the input: linear is about 16× the time, quadratic 256×; 64 leaves 4× for caches and noise.
    # Tiny timings are all noise; compare against a floor of 50 µs.
    ratio = large / max(small, 50e-6)
    assert ratio < 64, f"{name}: {small * 1e3:.2f} ms -> {large * 1e3:.2f} ms (x{ratio:.1f})"
