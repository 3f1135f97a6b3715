"""§7 permutation prompts: ``a {red, green} bird`` → one prompt per combination.

Rules: top-level unescaped ``{…}`` groups (nesting allowed) split at unescaped commas; options are
trimmed and ``\\,`` becomes a literal comma; groups combine as a Cartesian product with the leftmost
group varying slowest; unbalanced braces and too many jobs are errors.

Linear time on any input: one regex-driven scan builds the tree (no recursion, so 10,000 nested
braces are fine), job counts are computed bottom-up while scanning and checked against the cap
*before* anything is expanded, and expansion builds shared "ropes" (nested pairs) that are
flattened once per job, so the work is O(jobs x length) with jobs <= cap.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import too_many_jobs, unbalanced

_SPECIAL = re.compile(r"[\\{},]")
# Counts saturate here so a prompt with thousands of groups never builds a huge integer.
_SATURATED = 10**18


class _Seq(list):
    """A run of literal strings and groups; ``count`` = jobs it expands to."""

    __slots__ = ("count", "ropes")
    count: int  # type: ignore[assignment]  # shadows list.count on purpose: a job count
    ropes: list[Any]


class _Group(list):
    """The options (``_Seq``) of one ``{…}``; ``count`` = sum of its options' counts."""

    __slots__ = ("count", "ropes")
    count: int  # type: ignore[assignment]  # shadows list.count on purpose: a job count
    ropes: list[Any]


def _unescape(piece: str) -> str:
    # Spec: replace `\s*\\,` by `,`.  Done by hand: the regex is quadratic on long space runs.
    if "\\," not in piece:
        return piece
    parts = piece.split("\\,")
    return ",".join([p.rstrip() for p in parts[:-1]] + [parts[-1]])


def _close_option(seq: _Seq) -> None:
    """Trim an option at its edges and compute its job count (product of its groups)."""
    if seq and isinstance(seq[0], str):
        seq[0] = seq[0].lstrip()
    if seq and isinstance(seq[-1], str):
        seq[-1] = seq[-1].rstrip()
    _count_seq(seq)


def _count_seq(seq: _Seq) -> None:
    count = 1
    for item in seq:
        if not isinstance(item, str):
            count = min(count * item.count, _SATURATED)
    seq.count = count


def has_groups(text: str) -> bool:
    """Cheap pre-check: without braces there is nothing to expand."""
    return "{" in text or "}" in text


def expand(text: str, maximum: int) -> list[str] | None:
    """Expand permutations; ``None`` when the text has no (unescaped) groups at all.

    Raises ``PromptError`` (E_PERMUTATION) for unbalanced braces or more than ``maximum`` jobs.
    """
    if not has_groups(text):
        return None
    root = _Seq()
    current = root
    stack: list[tuple[_Seq, _Group]] = []  # (sequence the group sits in, the open group)
    order: list[_Seq | _Group] = []  # closing order == post-order, for bottom-up expansion
    start = 0  # first character of the literal being accumulated
    found = False
    skip_to = -1
    for match in _SPECIAL.finditer(text):
        pos = match.start()
        if pos < skip_to:  # the character escaped by a preceding backslash
            continue
        ch = text[pos]
        if ch == "\\":
            if pos + 1 < len(text) and text[pos + 1] in "{},":
                skip_to = pos + 2  # escaped: stays literal (`\,` is unescaped inside options)
            continue
        if ch == "," and not stack:
            continue  # a top-level comma is ordinary text
        piece = text[start:pos]
        if piece:
            current.append(_unescape(piece) if stack else piece)
        start = pos + 1
        if ch == "{":
            found = True
            group = _Group()
            stack.append((current, group))
            current = _Seq()
        elif ch == ",":
            _close_option(current)
            order.append(current)
            stack[-1][1].append(current)
            current = _Seq()
        else:  # "}"
            if not stack:
                raise unbalanced()
            _close_option(current)
            order.append(current)
            parent, group = stack.pop()
            group.append(current)
            total = 0
            for option in group:
                total = min(total + option.count, _SATURATED)
            group.count = total
            order.append(group)
            parent.append(group)
            current = parent
    if stack:
        raise unbalanced()
    if not found:
        return None
    piece = text[start:]
    if piece:
        root.append(piece)
    _count_seq(root)
    order.append(root)
    if root.count > maximum:
        shown = root.count if root.count < _SATURATED else f"more than {_SATURATED}"
        raise too_many_jobs(shown, maximum)
    for node in order:
        if isinstance(node, _Group):
            node.ropes = [rope for option in node for rope in option.ropes]
        else:
            ropes: list = [""]
            for item in node:
                if isinstance(item, str):
                    ropes = [(rope, item) for rope in ropes]
                else:
                    ropes = [(rope, sub) for rope in ropes for sub in item.ropes]
            node.ropes = ropes
    return [_flatten(rope) for rope in root.ropes]


def _flatten(rope) -> str:
    """Join a rope (a str or a nested (left, right) pair) without recursion."""
    out: list[str] = []
    stack = [rope]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        else:
            stack.append(node[1])
            stack.append(node[0])
    return "".join(out)
