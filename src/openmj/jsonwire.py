"""JSON on the wire: one strict reader for every request body, one safe writer for every response.

The reader refuses what would later break a render or a strict client: lone UTF-16 surrogates
(Python's `json` accepts `"\\ud800"`, which then cannot be encoded as UTF-8), NaN and Infinity,
numbers beyond 64 bits, NUL characters (PostgreSQL cannot store them) and deep nesting. The
writer never fails on a string: anything that still cannot be encoded (an old row written before
this reader existed) is scrubbed to U+FFFD instead of turning a whole list into a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

#: deepest nesting a request body may have; the deepest real body (an editor mask) is 5 levels
MAX_DEPTH = 32
#: numbers beyond ±2^63 are refused: no field of any dialect needs them and SQL integers overflow
MAX_MAGNITUDE = 2**63 - 1


class JsonRefused(ValueError):
    """The body is not JSON this server accepts; `message` says why, for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def loads(raw: bytes | str) -> Any:
    """Parse a request body strictly (see the module docstring). Raises JsonRefused only."""
    try:
        value = orjson.loads(raw)  # refuses lone surrogates, NaN/Infinity and depth > 1024 itself
    except orjson.JSONDecodeError as exc:
        raise JsonRefused(f"Malformed JSON body: {exc}") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    # iterative walk: a recursive one would be the very stack overflow this guards against
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise JsonRefused("Malformed JSON body: strings may not contain NUL (\\u0000)")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            if abs(item) > MAX_MAGNITUDE:
                raise JsonRefused(f"Malformed JSON body: the number {item!r:.40} is out of range (±2^63)")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise JsonRefused(f"Malformed JSON body: nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for k, v in item.items():
                    if "\x00" in k:
                        raise JsonRefused("Malformed JSON body: keys may not contain NUL (\\u0000)")
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. Never raises for a string that cannot be encoded: see `scrub`."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(scrub(value), option=orjson.OPT_NON_STR_KEYS, default=str)


def scrub(value: Any) -> Any:
    """A copy of `value` in which every string is valid UTF-8 (lone surrogates → U+FFFD), every
    float is finite (NaN/Infinity → null) and every integer fits 64 bits (else its digits)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_MAGNITUDE else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {scrub(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class JSONResponse(_StarletteJSONResponse):
    """Every JSON answer of openmj: orjson-encoded, and never a 500 for an unencodable string."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
