"""§2 parameter table: names/aliases, arity, and value validation (pipeline stage 4).

Each canonical key maps to one normal-form value type (§11).  Validators get the occurrence and
the effective model and return the normalised value or raise the §10 error; model-specific
ranges are only checked when the model supports the parameter at all (otherwise stage 5 reports
``not compatible``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import errors
from .aspect import parse_ratio
from .tokens import INT_RE, NUM_RE, is_url, num_out, to_int, to_num
from .versions import (
    NIJI_VERSIONS,
    STYLE_VALUES,
    SUPPORT,
    V_MODELS,
    iw_range,
    max_aspect,
    normalise_number,
    quality_values,
    sv_values,
)

# Arity classes (§1.2 step 6).
FLAG, OPT1, ONE, MANY, MANY0 = range(5)

# name as typed (lower-case, without "--") → (canonical key, arity)
ALIASES: dict[str, tuple[str, int]] = {
    "ar": ("ar", ONE),
    "aspect": ("ar", ONE),
    "chaos": ("chaos", ONE),
    "c": ("chaos", ONE),
    "stylize": ("stylize", ONE),
    "s": ("stylize", ONE),
    "weird": ("weird", ONE),
    "w": ("weird", ONE),
    "quality": ("quality", ONE),
    "q": ("quality", ONE),
    "seed": ("seed", ONE),
    "no": ("no", MANY),
    "iw": ("iw", ONE),
    "sref": ("sref", MANY),
    "sw": ("sw", ONE),
    "sv": ("sv", ONE),
    "oref": ("oref", MANY),  # one image, but all values are read so §4 can say "only one image"
    "ow": ("ow", ONE),
    "cref": ("cref", MANY),
    "cw": ("cw", ONE),
    "profile": ("profile", MANY0),
    "p": ("profile", MANY0),
    "tile": ("tile", FLAG),
    "raw": ("raw", FLAG),
    "style": ("style", ONE),  # `--style raw` becomes key "raw"
    "stop": ("stop", ONE),
    "repeat": ("repeat", ONE),
    "r": ("repeat", ONE),
    "exp": ("exp", ONE),
    "version": ("version", ONE),
    "v": ("version", ONE),
    "niji": ("niji", OPT1),
    "draft": ("draft", FLAG),
    "fast": ("speed", FLAG),
    "relax": ("speed", FLAG),
    "turbo": ("speed", FLAG),
    "stealth": ("visibility", FLAG),
    "public": ("visibility", FLAG),
    "video": ("video", FLAG),
    "motion": ("motion", ONE),
    "loop": ("loop", FLAG),
    "end": ("end", ONE),
    "bs": ("bs", ONE),
    "hd": ("hd", FLAG),
    "sd": ("sd", FLAG),
    "sameseed": ("sameseed", FLAG),
    "test": ("test", FLAG),
    "testp": ("testp", FLAG),
    "creative": ("creative", FLAG),
    "uplight": ("uplight", FLAG),
    "upbeta": ("upbeta", FLAG),
}

# List-valued keys concatenate across occurrences (§1.4); everything else: first one wins.
LIST_KEYS = frozenset({"no", "sref", "cref", "profile"})
# Keys whose several *different* values conflict instead of duplicating (§4).
EXCLUSIVE_KEYS = frozenset({"speed", "visibility"})
VIDEO_ONLY = ("motion", "loop", "end", "bs")
# What may accompany --video (§4/§14).
VIDEO_COMPATIBLE = frozenset({"video", "motion", "raw", "loop", "end", "bs", "speed", "visibility"})

# Inclusive (low, high) for integer parameters whose range does not depend on the model.
INT_RANGES: dict[str, tuple[int, int]] = {
    "chaos": (0, 100),
    "stylize": (0, 1000),
    "weird": (0, 3000),
    "seed": (0, 4294967295),
    "sw": (0, 1000),
    "ow": (1, 1000),
    "cw": (0, 100),
    "stop": (10, 100),
    "repeat": (2, 40),  # Pro/Mega plan (§11 test assumptions)
}
VERSION_VALUES = tuple(dict.fromkeys(V_MODELS))
_BS_VALUES = (1, 2, 4)
_MOTION_VALUES = ("low", "high")
_PROFILE_RE = re.compile(r"[A-Za-z0-9_-]+")
_STYLE_CODE_RE = re.compile(r"[A-Za-z0-9]+")
_NIJI_VALUE_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def niji_value_token(tok: str) -> bool:
    """§1.2: `--niji` consumes the next token only if it matches ``^\\d+(\\.\\d+)?$``."""
    return _NIJI_VALUE_RE.fullmatch(tok) is not None


@dataclass(slots=True)
class Occurrence:
    """One parameter as written: key, name as typed (``--s``), raw values, token position."""

    key: str
    name: str
    values: list[str]
    pos: int
    value: Any = None  # set by validation: a number, a string, a list, True

    def shown(self) -> str:
        """How messages name it: ``--s``; ``--style cute`` keeps its value."""
        if self.key in ("style", "raw") and self.name == "--style" and self.values:
            return f"--style {self.values[0]}"
        return self.name


def split_sref(item: str) -> tuple[str, str | None]:
    """``URL::2`` → (URL, "2"); the weight suffix is after the last ``::``."""
    cut = item.rfind("::")
    if cut < 0:
        return item, None
    return item[:cut], item[cut + 2 :]


def link_values(occ: Occurrence) -> list[str]:
    """URLs among a parameter's values (checked at stage 2 with the leading image prompts)."""
    if occ.key == "sref":
        return [ref for ref in (split_sref(v)[0] for v in occ.values) if is_url(ref)]
    if occ.key in ("cref", "oref", "end"):
        return [v for v in occ.values if is_url(v)]
    return []


def _int(occ: Occurrence, low: int, high: int) -> int:
    raw = occ.values[0]
    if INT_RE.fullmatch(raw) is None:
        raise errors.expects(occ.name, "an integer")
    value = to_int(raw)
    if not low <= value <= high:
        raise errors.out_of_range(occ.name, low, high)
    return value


def _num(occ: Occurrence) -> float:
    raw = occ.values[0]
    if NUM_RE.fullmatch(raw) is None:
        raise errors.expects(occ.name, "a number")
    return to_num(raw)


def _num_range(occ: Occurrence, low: float, high: float) -> int | float:
    value = _num(occ)
    if not low <= value <= high:
        raise errors.out_of_range(occ.name, low, high)
    return num_out(value)


def _urls(occ: Occurrence) -> list[str]:
    for v in occ.values:
        if not is_url(v):
            raise errors.expects(occ.name, "an image URL")
    return list(occ.values)


def validate(occ: Occurrence, model: str, ctx: dict) -> object:
    """Stage 4: the normalised §11 value of one occurrence, or raise its §10 error.

    ``ctx`` carries what some checks need: ``hd``/``test`` flags (aspect limits) and a
    ``warnings`` list (``quality_snapped``).
    """
    key = occ.key
    if key in INT_RANGES:
        low, high = INT_RANGES[key]
        return _int(occ, low, high)
    if key == "ar":
        return parse_ratio(occ.values[0], max_aspect(model, ctx["hd"], ctx["test"]))
    if key == "quality":
        value = _num(occ)
        if model not in SUPPORT["quality"]:
            return num_out(value)
        allowed = quality_values(model)
        if model == "7" and value == 3:  # [S] V7 --q 3 runs as 4
            ctx["warnings"].append("quality_snapped")
            value = 4
        if value not in allowed:
            raise errors.not_one_of(occ.name, allowed)
        return num_out(value)
    if key == "iw":
        return _num_range(occ, *iw_range(model))
    if key == "exp":
        return _num_range(occ, 0, 100)
    if key == "sv":
        if model not in SUPPORT["sv"]:
            return _int(occ, 0, 10**30)
        allowed = sv_values(model)
        if len(allowed) == 2 and model != "niji 7":
            return _int(occ, *allowed)
        value = _int(occ, 0, 10**30)
        if value not in allowed:
            raise errors.not_one_of(occ.name, allowed)
        return value
    if key == "no":
        return [term.strip() for term in " ".join(occ.values).split(",") if term.strip()]
    if key == "sref":
        return [_sref_item(occ, item) for item in occ.values]
    if key in ("cref", "oref"):
        return _urls(occ)
    if key == "end":
        return _urls(occ)[0]
    if key == "profile":
        for code in occ.values:
            if _PROFILE_RE.fullmatch(code) is None:
                raise errors.expects(occ.name, "profile or moodboard codes")
        return list(occ.values)
    if key == "version":
        number = normalise_number(occ.values[0])
        if number not in VERSION_VALUES:
            raise errors.not_one_of(occ.name, VERSION_VALUES)
        return number
    if key == "niji":
        if not occ.values:
            return "latest"
        number = normalise_number(occ.values[0])
        if number not in NIJI_VERSIONS:
            raise errors.not_one_of(occ.name, NIJI_VERSIONS)
        return number
    if key == "style":
        style = occ.values[0].lower()
        styles = STYLE_VALUES.get(model, ())
        if style != "raw" and model in STYLE_VALUES:  # otherwise stage 5 says "not compatible"
            if styles is None:
                if _STYLE_CODE_RE.fullmatch(style) is None:
                    raise errors.expects(occ.name, "a style tuner code")
            elif style not in styles:
                raise errors.not_one_of(occ.name, styles)
        return style
    if key == "motion":
        motion = occ.values[0].lower()
        if motion not in _MOTION_VALUES:
            raise errors.not_one_of(occ.name, _MOTION_VALUES)
        return motion
    if key == "bs":
        raw = occ.values[0]
        batch = to_int(raw) if INT_RE.fullmatch(raw) else None
        if batch not in _BS_VALUES:
            raise errors.not_one_of(occ.name, _BS_VALUES)
        return batch
    if key == "speed":
        return occ.name[2:]
    if key == "visibility":
        return occ.name[2:]
    return True  # flags: tile, raw, draft, video, loop, hd, sd, legacy flags


def _sref_item(occ: Occurrence, item: str) -> dict:
    ref, weight_text = split_sref(item)
    if weight_text is None:
        weight: int | float = 1
    elif NUM_RE.fullmatch(weight_text):
        weight = num_out(to_num(weight_text))
    else:
        raise errors.expects(occ.name, "a number after `::`")
    if is_url(ref):
        pass  # link syntax already checked at stage 2
    elif ref.isascii() and ref.isdigit():
        pass  # numeric style code
    elif ref.lower() == "random":
        ref = "random"
    else:
        raise errors.expects(occ.name, "an image URL, a style code or `random`")
    return {"ref": ref, "weight": weight}
