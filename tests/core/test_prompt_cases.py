"""Table-driven spec cases (tests/core/prompt_cases.py), compared by the §11 rule."""

from __future__ import annotations

import math

import pytest

from openmj.core.prompt import normal_form

from .prompt_cases import CASES


def _same(expected, actual) -> bool:
    """§11: numbers compare numerically, dicts/lists structurally."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(expected, actual, rel_tol=0, abs_tol=1e-9)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(_same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            _same(a, b) for a, b in zip(expected, actual, strict=True)
        )
    return expected == actual


def check(expect: dict, out: dict) -> list[str]:
    """Every key of ``expect`` against ``out``; returns the mismatches."""
    problems = []
    for key, want in expect.items():
        if key == "error_contains":
            if want not in out.get("error", ""):
                problems.append(f"error {out.get('error')!r} lacks {want!r}")
        elif key == "variants":
            got = out.get("variants", [])
            if len(got) != len(want):
                problems.append(f"variants: {len(got)} != {len(want)}")
                continue
            for i, (w, g) in enumerate(zip(want, got, strict=True)):
                problems += [f"variant {i}: {p}" for p in check(w, g)]
        elif key not in out or not _same(want, out[key]):
            problems.append(f"{key}: expected {want!r}, got {out.get(key, '<absent>')!r}")
    return problems


def _id(case: dict) -> str:
    return f"§{case['section']} {case['why']}"


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 150
    assert all(case["section"] and case["why"] for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_case(case: dict) -> None:
    out = normal_form(case["prompt"], case["version"])
    problems = check(case["expect"], out)
    assert not problems, f"{case['prompt']!r} ({case['version']}): {problems}; output {out}"
