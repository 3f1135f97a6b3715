"""§3 version matrix: which model a prompt runs on and what each model accepts.

Models are plain strings: ``"7"``, ``"6.1"``, ``"niji 6"`` … (the §11 ``effective_model``).
The matrix covers 5.1-7 and Niji 6/7 as the spec states them, V8.x with the §3 "V8.1/V8.2
deltas", and older models (1-5, Niji 4/5) with their documented legacy features.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import E_CONTEXT, PromptError

V8 = frozenset({"8", "8.1", "8.2"})
V_MODELS = ("1", "2", "3", "4", "5", "5.1", "5.2", "6", "6.1", "7", "8", "8.1", "8.2")
NIJI_VERSIONS = ("4", "5", "6", "7")
NIJI_MODELS = tuple(f"niji {n}" for n in NIJI_VERSIONS)
ALL_MODELS = frozenset(V_MODELS + NIJI_MODELS)
# The Niji a bare `--niji` means when the account default is not a Niji model (Niji 7 since 2026-01-09).
LATEST_NIJI = "niji 7"

_LEGACY = frozenset({"1", "2", "3", "4", "5", "5.1", "5.2", "niji 4", "niji 5"})
_V6_UP = frozenset({"6", "6.1", "7", "niji 6", "niji 7"}) | V8

# Parameter (canonical key) → models that accept it.  Keys absent here are accepted everywhere.
SUPPORT: dict[str, frozenset[str]] = {
    "weird": ALL_MODELS - {"1", "2", "3", "4", "niji 4"},
    "quality": ALL_MODELS - V8,
    "stop": ALL_MODELS - {"7", "niji 7"} - V8,
    "tile": ALL_MODELS - {"4", "niji 4"},
    "raw": frozenset({"5.1", "5.2", "6", "6.1", "7", "niji 6", "niji 7"}) | V8,
    "exp": frozenset({"7", "niji 7"}) | V8,
    "draft": frozenset({"7", "niji 7"}) | V8,
    "sref": _V6_UP,
    "sw": _V6_UP,
    "sv": _V6_UP,
    "profile": _V6_UP,
    "cref": frozenset({"6", "6.1", "niji 6"}),
    "cw": frozenset({"6", "6.1", "niji 6"}),
    "oref": frozenset({"7"}),
    "ow": frozenset({"7"}),
    "hd": V8,
    "sd": V8,
    "turbo": ALL_MODELS - V8,  # a speed value, checked like a parameter
    "sameseed": _LEGACY,
    "test": _LEGACY,
    "testp": _LEGACY,
    "creative": _LEGACY,
    "uplight": _LEGACY,
    "upbeta": _LEGACY,
}

# §6: `::` multi-prompts are split only on these; V7, V8.x and Niji 7 keep the text verbatim.
MULTI_PROMPT = ALL_MODELS - {"7", "niji 7"} - V8

# §2 --quality values per model ("3" on V7 snaps to 4, handled by the validator).
_Q_OLD = (0.25, 0.5, 1)
QUALITY: dict[str, tuple[float, ...]] = {
    "7": (1, 2, 4),
    "6": (0.5, 1, 2),
    "6.1": (0.5, 1, 2),
    "niji 6": (0.5, 1, 2),
    "niji 7": (1, 2),
    "1": (0.25, 0.5, 1, 2),
    "2": (0.25, 0.5, 1, 2),
    "3": (0.25, 0.5, 1, 2),
}


def quality_values(model: str) -> tuple[float, ...]:
    return QUALITY.get(model, _Q_OLD)


def iw_range(model: str) -> tuple[float, float]:
    """§2 --iw: 0-3 on V6/V6.1/V7/V8.x/Niji 6, 0-2 on Niji 7 and V5 and older."""
    return (0, 3) if model in _V6_UP and model != "niji 7" else (0, 2)


def sv_values(model: str) -> tuple[int, int] | tuple[int, ...]:
    """§2 --sv: a (low, high) range, or for Niji 7 the exact allowed set (4, 6)."""
    if model == "niji 7":
        return (4, 6)
    if model == "7":
        return (1, 6)
    if model in V8:
        return (1, 7)  # V8.x default --sv 7 [S]
    return (1, 4)


def max_aspect(model: str, hd: bool, test: bool) -> tuple[int, int]:
    """§2/§5.2 widest ratio as (num, den): 14:1 V5+, V8.x HD 4:1, V4 2:1, V1-3 5:2, --test 3:2."""
    if model in V8 and hd:
        return (4, 1)
    if test and model in _LEGACY:
        return (3, 2)
    if model in ("4", "niji 4"):
        return (2, 1)
    if model in ("1", "2", "3"):
        return (5, 2)
    return (14, 1)


# Non-raw --style values by model; other models reject them (E_VERSION, with the value).
STYLE_VALUES: dict[str, tuple[str, ...] | None] = {
    "niji 5": ("cute", "expressive", "original", "scenic"),
    "4": ("4a", "4b", "4c"),
    "5.2": None,  # V5.2 style tuner codes: any alphanumeric code
}


def model_flag(model: str) -> str:
    """How §10 names a model in E_VERSION: ``--version 7`` or ``--niji 6``."""
    if model.startswith("niji "):
        return "--niji " + model[5:]
    return "--version " + model


_VERSION_RE = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def normalise_number(value: str) -> str | None:
    """``5.0`` → ``5``, ``6.10`` → ``6.1``, ``07`` → ``7``; None if not ``\\d+(\\.\\d+)?``."""
    m = _VERSION_RE.fullmatch(value)
    if m is None or len(value) > 12:
        return None
    major = str(int(m.group(1)))
    minor = (m.group(2) or "").rstrip("0")
    return f"{major}.{minor}" if minor else major


@lru_cache(maxsize=64)
def normalise_context(version: str) -> str:
    """The ``version`` argument of ``parse``: "7", "6.1", "niji 6" … (also "v7", "niji6", "6.0")."""
    raw = str(version).strip().lower()
    if raw.startswith("niji"):
        number = normalise_number(raw[4:].strip(" -_"))
        model = f"niji {number}" if number else ""
    else:
        number = normalise_number(raw[1:].strip() if raw.startswith("v") else raw)
        model = number or ""
    if model not in ALL_MODELS:
        raise PromptError(f"Invalid version context `{version}`", E_CONTEXT, 0)
    return model
