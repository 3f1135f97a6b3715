"""Dialect policies: provider rules layered on the one parser.

Providers change what reaches Midjourney: EvoLink locks the model and strips speed flags, APIXO and
kie take some parameters as JSON fields.  These functions apply exactly those rules and then run
the same §1.2 pipeline, so every error is still a ``PromptError`` with the §10 wording.

Decisions (documented in docs/prompt.md):

* Fields win.  A field removes the same parameter written in the prompt (and the prompt's
  ``--v``/``--niji`` when the field is a version, the prompt's speed flags when it is a speed);
  the field is then appended as that parameter and validated with its §10 messages
  (``stylization: 2000`` → "`--stylize` must be between 0 and 1000").
* Field values must be single tokens of the parameter's syntax before they are appended, so a
  field can never smuggle text, braces or other parameters into the prompt.
* ``None`` or ``""`` means "field not sent".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors
from .errors import PromptError
from .parser import MAX_LENGTH, Options, ParsedPrompt, parse_with
from .tokens import INT_RE

# EvoLink (EvoLink's mj-v7 page): prompt maxLength 8192; the model is always V7.
EVOLINK_MAX_LENGTH = 8192
_EVOLINK = Options(
    drop=frozenset({"version", "speed", "draft"}),
    refuse=frozenset({"niji"}),
    max_length=max(EVOLINK_MAX_LENGTH, MAX_LENGTH),
)


def evolink_prompt(text: str, version: str = "7") -> tuple[ParsedPrompt, str | None]:
    """EvoLink ``mj-v7``: parse ``text`` as a V7 prompt under EvoLink's system protection.

    * ``--v``/``--version`` (any value, even an invalid or missing one) are removed: the model is
      the one the EvoLink model name says (``version``: "7" for mj-v7, "8.1" for mj-v8.1 …).
    * ``--niji`` (any form) is refused: ``PromptError`` "Invalid parameter: `--niji` is not
      supported" (code ``E_UNSUPPORTED``).
    * ``--fast``/``--turbo``/``--draft``/``--relax`` are removed; the first one is returned as the
      speed the prompt asked for ("fast", "turbo", "draft", "relax") — ``None`` if there was none.
      The caller decides whether ``model_params.speed`` wins.
    * Image prompts follow MJ (and EvoLink's mj-v7 page): one image without text is invalid, two or more are
      valid with or without text, links must end in .png/.gif/.webp/.jpg/.jpeg.
    * Length limit 8192 characters (EvoLink's mj-v7 page) instead of MJ's 6000.
    """
    parsed, dropped = parse_with(text, version, _EVOLINK)
    speed = None
    for occ in dropped:
        if occ.key in ("speed", "draft"):
            speed = occ.name[2:]
            break
    return parsed, speed


# APIXO: version field values → parameter tokens (APIXO's Midjourney page: v6, v6.1, v7, niji 6, niji 7).
_APIXO_VERSIONS = {
    "v6": ("--v", "6"),
    "v6.1": ("--v", "6.1"),
    "v7": ("--v", "7"),
    "niji 6": ("--niji", "6"),
    "niji 7": ("--niji", "7"),
}
APIXO_DEFAULT_VERSION = "6.1"  # APIXO's Midjourney page: "Default: v6.1"
# speed: relaxed is executed/billed as fast (api-dialects §3.2); draft is V7's --draft flag.
_APIXO_SPEEDS = {"fast": "--fast", "turbo": "--turbo", "draft": "--draft", "relaxed": "--fast"}


def apixo_prompt(prompt: str, fields: Mapping[str, Any] | None = None) -> ParsedPrompt:
    """APIXO ``/api/v1/generateTask/midjourney``: ``input.prompt`` plus its parameter fields.

    * Text from the first ``--`` onward is dropped (APIXO strips it; parameters come as fields).
    * Fields (v1 and v2/v3 names; when both are sent the newer name wins): ``aspect_ratio``/
      ``aspect`` → ``--ar``, ``variety``/``chaos`` → ``--chaos``, ``stylization``/``stylize`` →
      ``--stylize``, ``weirdness``/``weird`` → ``--weird``, ``version`` (v6, v6.1, v7, niji 6,
      niji 7; default v6.1, used as the account default rather than written as a parameter),
      ``speed`` (fast, turbo, draft → ``--draft``, relaxed → ``--fast``).
    * Fields win over parameters left in the prompt (e.g. an em-dash ``—ar``).
    """
    fields = fields or {}
    cut = prompt.find("--")
    text = prompt if cut < 0 else prompt[:cut]
    extra: list[str] = []
    drop: set[str] = set()
    _aspect_field(extra, drop, _pick(fields, "aspect_ratio", "aspect"))
    _int_field(extra, drop, "chaos", _pick(fields, "variety", "chaos"))
    _int_field(extra, drop, "stylize", _pick(fields, "stylization", "stylize"))
    _int_field(extra, drop, "weird", _pick(fields, "weirdness", "weird"))
    version = _present(fields.get("version"))
    context = APIXO_DEFAULT_VERSION
    if version is not None:
        key = str(version).strip().lower()
        if key not in _APIXO_VERSIONS:
            raise errors.not_one_of("version", tuple(_APIXO_VERSIONS))
        extra.extend(_APIXO_VERSIONS[key])
        drop.update(("version", "niji"))
    speed = _present(fields.get("speed"))
    if speed is not None:
        key = str(speed).strip().lower()
        if key not in _APIXO_SPEEDS:
            raise errors.not_one_of("speed", tuple(_APIXO_SPEEDS))
        extra.append(_APIXO_SPEEDS[key])
        drop.update(("speed", "draft"))
    options = Options(drop=frozenset(drop), extra=tuple(extra))
    return parse_with(text, context, options)[0]


# kie (kie.ai's generate page): version enum 7, 6.1, 6, 5.2, 5.1, niji6 (+ niji7 in the current enum).
_KIE_VERSIONS = {
    "7": ("--v", "7"),
    "6.1": ("--v", "6.1"),
    "6": ("--v", "6"),
    "5.2": ("--v", "5.2"),
    "5.1": ("--v", "5.1"),
    "niji6": ("--niji", "6"),
    "niji7": ("--niji", "7"),
}
KIE_DEFAULT_VERSION = "7"  # "the latest model is the default"
_KIE_SPEEDS = {"relaxed": "--relax", "fast": "--fast", "turbo": "--turbo"}


def kie_prompt(prompt: str, fields: Mapping[str, Any] | None = None) -> ParsedPrompt:
    """kie ``/api/v1/mj/generate``: the prompt (MJ syntax kept) plus its parameter fields.

    * ``aspectRatio`` → ``--ar`` (any valid MJ ratio, not only kie's list), ``version``
      (7, 6.1, 6, 5.2, 5.1, niji6, niji7) → ``--v``/``--niji``, ``variety`` → ``--chaos``,
      ``stylization`` → ``--stylize``, ``weirdness`` → ``--weird``, ``ow`` → ``--ow`` (dropped with
      ``orphan_parameter_dropped`` unless the prompt has ``--oref``), ``speed`` relaxed/fast/turbo →
      ``--relax``/``--fast``/``--turbo``.
    * Fields win: the same parameter written in the prompt is removed first.
    * Without a version field the prompt's own ``--v``/``--niji`` apply, else V7.
    """
    fields = fields or {}
    extra: list[str] = []
    drop: set[str] = set()
    _aspect_field(extra, drop, _present(fields.get("aspectRatio")))
    _int_field(extra, drop, "chaos", _present(fields.get("variety")))
    _int_field(extra, drop, "stylize", _present(fields.get("stylization")))
    _int_field(extra, drop, "weird", _present(fields.get("weirdness")))
    _int_field(extra, drop, "ow", _present(fields.get("ow")))
    version = _present(fields.get("version"))
    if version is not None:
        key = str(version).strip().lower().replace(" ", "")
        if key not in _KIE_VERSIONS:
            raise errors.not_one_of("version", tuple(_KIE_VERSIONS))
        extra.extend(_KIE_VERSIONS[key])
        drop.update(("version", "niji"))
    speed = _present(fields.get("speed"))
    if speed is not None:
        key = str(speed).strip().lower()
        if key not in _KIE_SPEEDS:
            raise errors.not_one_of("speed", tuple(_KIE_SPEEDS))
        extra.append(_KIE_SPEEDS[key])
        drop.add("speed")
    options = Options(drop=frozenset(drop), extra=tuple(extra))
    return parse_with(prompt, KIE_DEFAULT_VERSION, options)[0]


# midjourney-proxy: botType picks the bot (Midjourney or Niji) whose default model a prompt without
# --v/--niji uses; --fast/--turbo/--relax/--draft in the prompt pick the mode, as on Discord.
MJPROXY_VERSIONS = {"MID_JOURNEY": "7", "NIJI_JOURNEY": "niji 7"}
_MJPROXY_SPEEDS = ("fast", "turbo", "relax")


def mjproxy_version(bot_type: str | None) -> str:
    """The version context of a midjourney-proxy prompt (the prompt's own --v/--niji still win)."""
    return MJPROXY_VERSIONS.get((bot_type or "").strip().upper(), MJPROXY_VERSIONS["MID_JOURNEY"])


def mjproxy_prompt(text: str, bot_type: str | None) -> tuple[ParsedPrompt, str]:
    """midjourney-proxy imagine/retexture: the prompt as on Discord, and the mode it asks for
    ("fast", "turbo", "relax" or "draft"; fast when it names none)."""
    parsed = parse_with(text, mjproxy_version(bot_type), Options())[0]
    params = parsed.to_dict().get("params", {})
    speed = params.get("speed")
    if speed in _MJPROXY_SPEEDS:
        return parsed, str(speed)
    return parsed, "draft" if params.get("draft") else "fast"


def _present(value: Any) -> Any:
    return None if value is None or value == "" else value


def _pick(fields: Mapping[str, Any], newer: str, older: str) -> Any:
    value = _present(fields.get(newer))
    return value if value is not None else _present(fields.get(older))


def _aspect_field(extra: list[str], drop: set[str], value: Any) -> None:
    if value is None:
        return
    text = str(value).strip()
    if not text or any(ch.isspace() or ch in "{}" for ch in text) or text.startswith("-"):
        raise errors.bad_aspect(str(value))
    extra.extend(("--ar", text))
    drop.add("ar")


def _int_field(extra: list[str], drop: set[str], key: str, value: Any) -> None:
    """An integer field becomes ``--key N``; non-integers get the parameter's E_TYPE message."""
    if value is None:
        return
    if isinstance(value, bool):
        raise errors.expects(f"--{key}", "an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not isinstance(value, (int, str)) or INT_RE.fullmatch(text) is None:
        raise errors.expects(f"--{key}", "an integer")
    extra.extend((f"--{key}", text))
    drop.add(key)


__all__ = [
    "APIXO_DEFAULT_VERSION",
    "EVOLINK_MAX_LENGTH",
    "KIE_DEFAULT_VERSION",
    "PromptError",
    "apixo_prompt",
    "evolink_prompt",
    "kie_prompt",
    "mjproxy_prompt",
    "mjproxy_version",
]


#: stands in for the start image while a video's motion prompt is parsed: Midjourney's grammar
#: wants the start image first, the dialects send it in a field of its own (core/video.py drops it)
VIDEO_START_PLACEHOLDER = "https://start-image.invalid/start.png"


def video_prompt(text: str) -> ParsedPrompt | None:
    """A video's motion prompt (optional, as on Midjourney) with its `--motion --loop --end --bs`
    read by the parser, and every image-only parameter refused with Midjourney's message."""
    text = text.strip()
    if not text:
        return None
    flag = "" if "--video" in text.split() else " --video"
    parsed, _ = parse_with(f"{VIDEO_START_PLACEHOLDER} {text}{flag}", "7", Options())
    return parsed
