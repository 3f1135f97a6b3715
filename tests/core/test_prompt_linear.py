"""Pathological inputs stay linear (issue 3 item 5), measured so that a loaded machine cannot fail it:
by the Python lines the parser runs, and by its CPU time for what happens inside C (tests/measure.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from openmj.core.prompt import PromptError, parse
from tests.measure import cpu_seconds, lines_executed

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


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", ["7", "6"])
def test_linear_in_work(name: str, version: str) -> None:
    make = CASES[name]
    texts = make(250), make(2_000)
    small, large = (lines_executed(lambda t=t: _parse(t, version)) for t in texts)
    # 8× the input: linear work is 8× the lines, quadratic 64×; the count has no noise, so 16 is ample
    assert large <= 16 * small, f"{name}: {small} -> {large} lines (x{large / small:.1f})"


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", ["7", "6"])
def test_linear_in_cpu_time(name: str, version: str) -> None:
    make = CASES[name]
    texts = make(2_000), make(32_000)
    small, large = cpu_seconds([lambda t=t: _parse(t, version) for t in texts])
    # 16× the input: linear is about 16× the time, quadratic 256×; 64 leaves 4× for caches and noise.
    # Tiny timings are all noise; compare against a floor of 50 µs.
    ratio = large / max(small, 50e-6)
    assert ratio < 64, f"{name}: {small * 1e3:.2f} ms -> {large * 1e3:.2f} ms (x{ratio:.1f})"
