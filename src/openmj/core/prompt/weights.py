"""§6 multi-prompts: ``hot::2 dog`` → [{"text": "hot", "weight": 2}, {"text": "dog", "weight": 1}]."""

from __future__ import annotations

import re

from .tokens import num_out, to_num

# The spec's `::(-?\d*\.?\d+)?` with ASCII digits.  Backtracking is bounded by one digit run and
# every attempt starts at a literal "::", so a scan is linear even over thousands of colons.
WEIGHT_RE = re.compile(r"::(-?[0-9]*\.?[0-9]+)?")
# §6 [I]: `--no` counts as one extra part weighted -0.5 in the sum.
NO_WEIGHT = -0.5


def split_segments(text: str) -> list[dict] | None:
    """Split on ``::``; None when the text has no ``::`` (not a multi-prompt).

    Each ``::`` closes the part before it, weighted by the number right after it (default 1);
    the text after the last ``::`` is a final part of weight 1 if non-empty; parts are trimmed.
    """
    if "::" not in text:
        return None
    segments: list[dict] = []
    last = 0
    for m in WEIGHT_RE.finditer(text):
        weight = to_num(m.group(1)) if m.group(1) else 1
        segments.append({"text": text[last : m.start()].strip(), "weight": num_out(weight)})
        last = m.end()
    tail = text[last:].strip()
    if tail:
        segments.append({"text": tail, "weight": 1})
    return segments


def weight_total(segments: list[dict], has_no: bool) -> float:
    return sum(s["weight"] for s in segments) + (NO_WEIGHT if has_no else 0)
