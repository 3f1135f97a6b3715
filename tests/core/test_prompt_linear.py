"""Pathological inputs stay linear (issue 3 item 5): time(4n) / time(n) is far below quadratic."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from openmj.core.prompt import PromptError, parse

IMG = "https://cdn.example.com/a.png"
# Linear work gives a ratio near 4 and quadratic near 16; 9 leaves room for noise and caches.
MAX_RATIO = 9.0

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


def _cost(text: str, version: str) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with contextlib.suppress(PromptError):
            parse(text, version)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", ["7", "6"])
def test_linear(name: str, version: str) -> None:
    make = CASES[name]
    n = 2_000
    small, large = _cost(make(n), version), _cost(make(4 * n), version)
    # Tiny timings are all noise; compare against a floor of 50 µs.
    ratio = large / max(small, 50e-6)
    assert ratio < MAX_RATIO, f"{name}: {small * 1e3:.2f} ms -> {large * 1e3:.2f} ms (x{ratio:.1f})"
