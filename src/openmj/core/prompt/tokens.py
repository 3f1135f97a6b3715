"""Tokens (§1.2 steps 2-3), links (§8) and the number syntax of §2.

Everything here is hand-written or uses anchored regexes whose backtracking is bounded by one
digit run, so the parser stays linear on hostile input.
"""

from __future__ import annotations

import re
from math import inf

EM_DASH = "\u2014"
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
IMAGE_EXTENSIONS = (".png", ".gif", ".webp", ".jpg", ".jpeg")

# §2 type notation. fullmatch only; [0-9] not \d because Python's \d also matches other scripts' digits.
INT_RE = re.compile(r"[+-]?[0-9]+")
NUM_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# Longest digit string converted exactly; longer ones are out of every range anyway, and
# int() refuses > 4300 digits (CVE-2020-10735 guard), so they must never reach it.
_MAX_DIGITS = 30


def tokenise(text: str) -> list[str]:
    """§1.2 steps 2-3: split on Unicode whitespace runs, then turn a leading em dash into ``--``.

    Only an em dash directly followed by an ASCII letter counts ("—ar" → "--ar"); an en dash is
    never a parameter prefix (MJ answered ``Unrecognized parameter(s): –v, 5``).
    """
    tokens = text.split()
    if EM_DASH in text:
        for i, tok in enumerate(tokens):
            if tok[0] == EM_DASH and len(tok) > 1 and tok[1] in _ASCII_LETTERS:
                tokens[i] = "--" + tok[1:]
    return tokens


def is_param_token(tok: str) -> bool:
    """§1.2 step 5: ``^--[A-Za-z]`` (``--``, ``--5``, ``poppies--ar`` are not parameters)."""
    return len(tok) > 2 and tok[0] == "-" and tok[1] == "-" and tok[2] in _ASCII_LETTERS


def is_url(tok: str) -> bool:
    head = tok[:8].lower()
    return head.startswith("http://") or head == "https://"


def is_image_url(url: str) -> bool:
    """§8: the URL *path* ends in an image extension (case-insensitive, query/fragment ignored);
    MJ short links ``https://s.mj.run/<id>`` are accepted as they are."""
    rest = url.split("://", 1)[1].lower()
    for sep in ("?", "#"):
        cut = rest.find(sep)
        if cut >= 0:
            rest = rest[:cut]
    slash = rest.find("/")
    if slash <= 0:  # no host, or no path at all
        return False
    host, path = rest[:slash], rest[slash:]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    if host == "s.mj.run":
        return len(path) > 1
    return path.endswith(IMAGE_EXTENSIONS)


def to_int(text: str) -> int:
    """Value of an INT_RE string; absurdly long ones saturate (they fail any range check)."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > _MAX_DIGITS:
        big = 10**_MAX_DIGITS
        return -big if text.startswith("-") else big
    return int(text)


def to_num(text: str) -> float:
    """Value of a NUM_RE string, with the same saturation as ``to_int``."""
    if len(text) <= _MAX_DIGITS:
        return float(text)
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("+-").partition(".")
    whole = whole.lstrip("0")
    if len(whole) > _MAX_DIGITS:
        return -inf if negative else inf
    value = float((whole or "0") + "." + (frac[:_MAX_DIGITS] or "0"))
    return -value if negative else value


def num_out(value: float) -> int | float:
    """Numbers in the normal form: whole values as ints (JSON ``2`` rather than ``2.0``)."""
    if value != value or value in (inf, -inf):  # NaN/inf never reach here from NUM_RE, but be safe
        return value
    return int(value) if float(value).is_integer() else float(value)
