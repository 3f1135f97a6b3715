"""The prompt of a Custom Zoom or Remix window: `--zoom N` and whether any words were typed.

Discord's Custom Zoom window pre-fills the job's prompt and takes `--zoom 1`–`2` in it; the rest
is a remix prompt only when it has words (parameters alone change nothing).
"""

from __future__ import annotations

import re

from .errors import E_RANGE, PromptError

ZOOM_MIN, ZOOM_MAX = 1.0, 2.0  # Midjourney's Custom Zoom range
_ZOOM = re.compile(r"(?:^|\s)(?:--|—)zoom\s+(\S+)", re.IGNORECASE)  # Discord takes an em dash too
_FIRST_PARAMETER = re.compile(r"(?:^|\s)(?:--|—)")


def _zoom_error(value: str) -> PromptError:
    message = f"--zoom must be a number from {ZOOM_MIN:g} to {ZOOM_MAX:g} (got {value!r})"
    return PromptError(message, E_RANGE, 4)


def split_zoom(text: str) -> tuple[str, float | None]:
    """(the prompt without `--zoom N`, N or None). Raises PromptError for a bad or out-of-range N."""
    m = _ZOOM.search(text)
    if m is None:
        return text, None
    try:
        scale = float(m[1])
    except ValueError:
        raise _zoom_error(m[1]) from None
    if not ZOOM_MIN <= scale <= ZOOM_MAX:
        raise _zoom_error(m[1])
    return _ZOOM.sub(" ", text).strip(), scale


def has_words(text: str) -> bool:
    """Whether a window's prompt carries text (a remix) rather than only parameters."""
    return bool(_FIRST_PARAMETER.split(text, maxsplit=1)[0].strip())
