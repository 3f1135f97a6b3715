"""Measures of work that a loaded machine cannot distort, for the linearity tests.

`lines_executed` counts the Python lines a call runs: the same on every machine and under any
load. It does not see work done inside one C call (a slice, a regex), so `cpu_seconds` times calls
with `time.thread_time()`, which counts only this thread's CPU, not the time other processes hold
the core; gc is off and the calls are interleaved, so drift affects them all alike.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any


def lines_executed(fn: Callable[[], object]) -> int:
    """Python lines run by one call of `fn`, after a warm-up call (so caches are already filled)."""
    fn()
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += event == "line"
        return local

    previous = sys.gettrace()  # a coverage tool's tracer, if any, is put back afterwards
    sys.settrace(lambda frame, event, arg: local)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


def cpu_seconds(fns: Sequence[Callable[[], object]], rounds: int = 3) -> list[float]:
    """The best CPU time of each call over `rounds`, the calls interleaved."""
    best = [float("inf")] * len(fns)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                start = time.thread_time()
                fn()
                best[i] = min(best[i], time.thread_time() - start)
    finally:
        gc.enable()
    return best
