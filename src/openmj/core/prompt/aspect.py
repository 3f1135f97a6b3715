"""§5 aspect ratios: ``--ar W:H`` syntax, reduction, limits, and the V7 grid pixel size."""

from __future__ import annotations

import re
from functools import lru_cache
from math import gcd, log, sqrt

from .errors import bad_aspect

_AR_RE = re.compile(r"([0-9]+):([0-9]+)")
_MAX_SIDE_DIGITS = 1000  # int() on longer strings is slow/refused; nothing that long is a ratio

# §5.3 table, keyed by the *reduced* ratio (21:9 is stored as 7:3).
_TABLE: dict[tuple[int, int], tuple[int, int]] = {
    (1, 1): (1024, 1024),
    (4, 3): (1232, 928),
    (3, 4): (928, 1232),
    (3, 2): (1344, 896),
    (2, 3): (896, 1344),
    (16, 9): (1456, 816),
    (9, 16): (816, 1456),
    (6, 5): (1200, 992),
    (5, 6): (992, 1200),
    (2, 1): (1536, 768),
    (1, 2): (768, 1536),
    (7, 3): (1680, 720),
    (3, 7): (720, 1680),
}
_TARGET_AREA = 1_180_000  # §5.3: "area ≈1.18 MP" for ratios outside the table
_AREA_BAND = 0.05  # accept areas within ±5 % of the target when looking for the closest ratio


def parse_ratio(value: str, limit: tuple[int, int] = (14, 1)) -> str:
    """Validate ``W:H`` (positive integers) and return it reduced by the gcd.

    ``limit`` = (num, den) is the widest ratio allowed either way (§5.2); anything else,
    decimals, punctuation or zeros raise E_ASPECT with the value as typed.
    """
    m = _AR_RE.fullmatch(value)
    if m is None or len(value) > _MAX_SIDE_DIGITS:
        raise bad_aspect(value)
    width, height = int(m.group(1)), int(m.group(2))
    if width == 0 or height == 0:
        raise bad_aspect(value)
    g = gcd(width, height)
    width, height = width // g, height // g
    num, den = limit
    if width * den > num * height or height * den > num * width:
        raise bad_aspect(value)
    return f"{width}:{height}"


def grid_size(ar: str) -> tuple[int, int]:
    """Pixel size (width, height) of one V7 grid image for an ``W:H`` ratio (§5.3).

    Table ratios give the table values exactly (``21:9`` and ``7:3`` are the same ratio); any other
    ratio gets sides that are multiples of 16 with area within 5 % of 1.18 MP, choosing the pair
    whose ratio is closest to the request (ties: area closest to 1.18 MP). ``H:W`` is always the
    transpose of ``W:H``. Raises ``ValueError`` for a malformed ratio.
    """
    m = _AR_RE.fullmatch(ar.strip())
    if m is None or len(ar) > 40:
        raise ValueError(f"not an aspect ratio: {ar!r}")
    width, height = int(m.group(1)), int(m.group(2))
    if width == 0 or height == 0:
        raise ValueError(f"not an aspect ratio: {ar!r}")
    g = gcd(width, height)
    return _grid_size(width // g, height // g)


@lru_cache(maxsize=512)
def _grid_size(width: int, height: int) -> tuple[int, int]:
    if (width, height) in _TABLE:
        return _TABLE[(width, height)]
    if width < height:
        h, w = _grid_size(height, width)
        return (w, h)
    ratio = width / height  # >= 1 from here on
    target = log(ratio)
    low, high = _TARGET_AREA * (1 - _AREA_BAND), _TARGET_AREA * (1 + _AREA_BAND)
    best: tuple[float, float, int, int] | None = None
    ideal_h = sqrt(_TARGET_AREA / ratio)
    # Heights from ~half to ~double the ideal cover every in-band pair; widths are the two
    # multiples of 16 around h * ratio.
    for h in range(max(16, int(ideal_h / 2) // 16 * 16), int(ideal_h * 2) + 32, 16):
        base = int(h * ratio) // 16 * 16
        for w in (base, base + 16):
            if w < 16 or not low <= w * h <= high:
                continue
            score = (abs(log(w / h) - target), abs(w * h - _TARGET_AREA), w, h)
            if best is None or score < best:
                best = score
    if best is None:  # extreme ratios: no in-band pair, so round the ideal sides
        h = max(16, round(ideal_h / 16) * 16)
        w = max(16, round(ideal_h * ratio / 16) * 16)
        return (w, h)
    return (best[2], best[3])
