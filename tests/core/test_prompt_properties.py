"""Property tests: no input makes the parser raise anything but PromptError (issue 3 item 5)."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openmj.core.prompt import ParsedPrompt, PromptError, normal_form, parse
from openmj.core.prompt.policies import apixo_prompt, evolink_prompt, kie_prompt

VERSIONS = ["7", "6.1", "6", "5.2", "5.1", "niji 6", "niji 7"]

# Pieces that reach every stage: parameters (valid, invalid, unknown), braces, escapes, weights,
# links, dashes and odd whitespace.
_PIECES = [
    "--ar",
    "--aspect",
    "16:9",
    "1:15",
    "0:1",
    "16",
    ":",
    "9",
    "--s",
    "--stylize",
    "--c",
    "--w",
    "--q",
    "--seed",
    "--no",
    "--iw",
    "--sref",
    "--sw",
    "--sv",
    "--oref",
    "--ow",
    "--cref",
    "--cw",
    "--p",
    "--tile",
    "--raw",
    "--style",
    "raw",
    "cute",
    "--stop",
    "--r",
    "--repeat",
    "--exp",
    "--v",
    "--version",
    "--niji",
    "--draft",
    "--fast",
    "--relax",
    "--turbo",
    "--stealth",
    "--public",
    "--video",
    "--motion",
    "high",
    "--loop",
    "--end",
    "--bs",
    "--hd",
    "--sd",
    "--test",
    "--foo",
    "--",
    "-",
    "—ar",
    "–v",
    "—",
    "::",
    "::2",
    "::-1",
    "::.5",
    "{",
    "}",
    ",",
    "\\,",
    "\\{",
    "random",
    "12345",
    "0",
    "1",
    "2",
    "3",
    "4",
    "6",
    "7",
    "100",
    "1000",
    "-5",
    ".5",
    "1.5",
    "9" * 40,
    "https://a.com/x.png",
    "https://a.com/y.jpg",
    "https://a.com/page",
    "https://s.mj.run/x",
    "http://",
    "cat",
    "a",
    "😊",
    "\u00a0",
    "\u3000",
    "\t",
    "\n",
    " ",
]
_prompts = st.lists(st.sampled_from(_PIECES), max_size=60).map(lambda parts: " ".join(parts))
_glued = st.lists(st.sampled_from(_PIECES), max_size=60).map("".join)


def _check(text: str, version: str) -> None:
    try:
        parsed = parse(text, version)
    except PromptError as exc:
        assert exc.message and exc.code.startswith("E_")
        out = normal_form(text, version)
        assert out == {"ok": False, "error": exc.message, "error_code": exc.code}
        return
    assert isinstance(parsed, ParsedPrompt)
    out = parsed.to_dict()
    assert out["ok"] is True
    json.dumps(out)  # the normal form is plain JSON
    assert out["job_count"] >= 1
    assert not out["variants"] or len(out["variants"]) == out["job_count"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=10_000), st.sampled_from(VERSIONS))
def test_arbitrary_unicode_only_raises_prompt_error(text: str, version: str) -> None:
    _check(text, version)


@settings(max_examples=400, deadline=None)
@given(_prompts, st.sampled_from(VERSIONS))
def test_prompt_like_text_only_raises_prompt_error(text: str, version: str) -> None:
    _check(text, version)


@settings(max_examples=200, deadline=None)
@given(_glued, st.sampled_from(VERSIONS))
def test_glued_pieces_only_raise_prompt_error(text: str, version: str) -> None:
    _check(text, version)


@settings(max_examples=150, deadline=None)
@given(
    _prompts,
    st.dictionaries(
        st.sampled_from(
            [
                "aspectRatio",
                "aspect_ratio",
                "aspect",
                "variety",
                "chaos",
                "stylization",
                "stylize",
                "weirdness",
                "weird",
                "ow",
                "version",
                "speed",
            ]
        ),
        st.one_of(
            st.none(),
            st.integers(-10, 5000),
            st.text(max_size=8),
            st.floats(allow_nan=True),
            st.sampled_from(["16:9", "7", "niji6", "v7", "niji 7", "fast", "relaxed", "turbo", "draft"]),
        ),
    ),
)
def test_policies_only_raise_prompt_error(text: str, fields: dict) -> None:
    for call in (
        lambda: evolink_prompt(text),
        lambda: apixo_prompt(text, fields),
        lambda: kie_prompt(text, fields),
    ):
        with contextlib.suppress(PromptError):
            call()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["cat", "red", "{", "}", ",", "\\,", "{a,b}", " "]), max_size=80).map("".join)
)
def test_permutation_jobs_match_variants(text: str) -> None:
    try:
        parsed = parse(text + " x")
    except PromptError as exc:
        assert exc.code in ("E_PERMUTATION", "E_EMPTY", "E_UNRECOGNIZED")
        return
    assert parsed.job_count == max(1, len(parsed.variants))
    assert parsed.job_count <= 40


def test_long_random_prompts_only_raise_prompt_error() -> None:
    """Hypothesis rarely builds 10,000-character strings, so also try a seeded batch of them."""
    import random

    rng = random.Random(3)
    alphabet = [chr(c) for c in range(32, 0x2FF)] + ["—", "–", "😊", "\u200b", "\u3000", "\n", "{", "}"]
    for _ in range(60):
        size = rng.randint(5_000, 10_000)
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(size))
        else:
            parts: list[str] = []
            while sum(map(len, parts)) < size:
                parts.append(rng.choice(_PIECES))
            text = " ".join(parts)[:size]
        _check(text, rng.choice(VERSIONS))
