"""The §1.2 pipeline: permutations → tokens → image URLs → text → parameters → validation.

Errors are reported by §10 precedence: the lowest failing stage wins, and within a stage the
leftmost problem.  Stages 2-4 are collected during one scan and raised in stage order; stages
5-7 run in order afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from .aspect import grid_size
from .errors import PromptError
from .params import (
    ALIASES,
    EXCLUSIVE_KEYS,
    FLAG,
    LIST_KEYS,
    MANY,
    MANY0,
    ONE,
    OPT1,
    VIDEO_COMPATIBLE,
    VIDEO_ONLY,
    Occurrence,
    link_values,
    niji_value_token,
    validate,
)
from .permutations import expand
from .tokens import EM_DASH, is_image_url, is_param_token, is_url, tokenise
from .versions import (
    LATEST_NIJI,
    MULTI_PROMPT,
    STYLE_VALUES,
    SUPPORT,
    model_flag,
    normalise_context,
)
from .weights import split_segments, weight_total

MAX_LENGTH = 6000  # §1.5 [I]
MAX_JOBS = 40  # §7 Pro/Mega cap (§11 test assumption: plan Pro)
# Inputs this far over the limit are refused before any work, so cost is bounded for any size.
HARD_LENGTH = 100_000
_REF_KINDS = {"oref": "Omni", "sref": "Style", "cref": "Character"}
_AR_JOIN_LIMIT = 2  # tokens a spaced ratio (`16 : 9`) may spill into


@dataclass(frozen=True)
class Options:
    """Hooks for dialect policies (``policies.py``); the plain parser uses the defaults.

    ``drop``: canonical keys whose occurrences in the user's text are consumed and discarded
    (collected in ``dropped``); ``refuse``: keys that make the prompt invalid; ``extra``:
    parameter tokens appended to every variant (API fields), never dropped or refused.
    """

    drop: frozenset[str] = frozenset()
    refuse: frozenset[str] = frozenset()
    extra: tuple[str, ...] = ()
    max_length: int = MAX_LENGTH


_DEFAULT = Options()


@dataclass(frozen=True)
class ParsedPrompt:
    """A valid prompt in §11 normal form (``to_dict()``), plus accessors for the engine.

    Fields: ``text``, ``image_urls``, ``params`` (only parameters present in the prompt),
    ``segments`` (``::`` parts or None), ``warnings``, ``effective_model``, ``job_count`` and
    ``variants`` (one entry per job when permutations or ``--repeat`` fan out, else empty).

    Accessors (defaults are MJ's §2 defaults, never stored in ``params``):
    ``aspect`` "W:H" ("1:1"), ``size`` (w, h) grid pixels, ``seed`` int|None,
    ``negative_terms`` list (``--no``), ``stylize`` (100), ``chaos`` (0), ``weird`` (0),
    ``quality`` (1), ``raw``/``tile``/``draft``/``is_video`` bools, ``stop`` (100), ``exp`` (0),
    ``speed`` str|None, ``image_weight`` (1), ``style_refs`` list of {"ref","weight"},
    ``style_weight`` (100), ``style_version`` (6 on V7, 4 before), ``omni_ref`` str|None,
    ``omni_weight`` (100), ``character_refs`` list, ``character_weight`` (100), ``profiles``
    list|None, ``repeat`` (1), ``is_niji``.
    """

    text: str
    image_urls: list[str]
    params: dict[str, Any]
    segments: list[dict] | None
    warnings: list[str]
    effective_model: str
    job_count: int = 1
    variants: list[ParsedPrompt] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The §11 normal form (``ok: True``); variants carry their own text/params/…"""
        out = self._core()
        out["job_count"] = self.job_count
        out["variants"] = [v._core(with_ok=False) for v in self.variants]
        return out

    def _core(self, with_ok: bool = True) -> dict:
        out: dict[str, Any] = {"ok": True} if with_ok else {}
        out["text"] = self.text
        out["image_urls"] = list(self.image_urls)
        out["params"] = _copy_params(self.params)
        out["segments"] = [dict(s) for s in self.segments] if self.segments is not None else None
        out["warnings"] = list(self.warnings)
        out["effective_model"] = self.effective_model
        return out

    # -- accessors the engine uses -------------------------------------------------------------
    @property
    def aspect(self) -> str:
        return self.params.get("ar", "1:1")

    @property
    def size(self) -> tuple[int, int]:
        return grid_size(self.aspect)

    @property
    def seed(self) -> int | None:
        return self.params.get("seed")

    @property
    def negative_terms(self) -> list[str]:
        return list(self.params.get("no", ()))

    @property
    def stylize(self) -> int:
        return self.params.get("stylize", 100)

    @property
    def chaos(self) -> int:
        return self.params.get("chaos", 0)

    @property
    def weird(self) -> int:
        return self.params.get("weird", 0)

    @property
    def quality(self) -> float:
        return self.params.get("quality", 1)

    @property
    def raw(self) -> bool:
        return bool(self.params.get("raw", False))

    @property
    def tile(self) -> bool:
        return bool(self.params.get("tile", False))

    @property
    def draft(self) -> bool:
        return bool(self.params.get("draft", False))

    @property
    def is_video(self) -> bool:
        return bool(self.params.get("video", False))

    @property
    def stop(self) -> int:
        return self.params.get("stop", 100)

    @property
    def exp(self) -> float:
        return self.params.get("exp", 0)

    @property
    def speed(self) -> str | None:
        return self.params.get("speed")

    @property
    def image_weight(self) -> float:
        return self.params.get("iw", 1)

    @property
    def style_refs(self) -> list[dict]:
        return [dict(r) for r in self.params.get("sref", ())]

    @property
    def style_weight(self) -> int:
        return self.params.get("sw", 100)

    @property
    def style_version(self) -> int:
        default = 6 if self.effective_model == "7" else 7 if self.effective_model.startswith("8") else 4
        return self.params.get("sv", default)

    @property
    def omni_ref(self) -> str | None:
        return self.params.get("oref")

    @property
    def omni_weight(self) -> int:
        return self.params.get("ow", 100)

    @property
    def character_refs(self) -> list[str]:
        return list(self.params.get("cref", ()))

    @property
    def character_weight(self) -> int:
        return self.params.get("cw", 100)

    @property
    def profiles(self) -> list[str] | None:
        """None: no ``--p``; [] : the default profile; else the codes."""
        value = self.params.get("profile")
        return None if value is None else list(value)

    @property
    def repeat(self) -> int:
        return self.params.get("repeat", 1)

    @property
    def is_niji(self) -> bool:
        return self.effective_model.startswith("niji")


def _copy_params(params: dict) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, list):
            value = [dict(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def parse(text: str, version: str = "7") -> ParsedPrompt:
    """Parse one prompt as Midjourney would; raise ``PromptError`` (only) if MJ would refuse it.

    ``version`` is the account default model (§11 ``version_context``): "7", "6.1", "6", "5.2",
    "5.1", "niji 6", "niji 7" (also any other model of §3, and forms such as "v7"/"niji6").
    """
    return parse_with(text, version, _DEFAULT)[0]


def normal_form(text: str, version: str = "7") -> dict:
    """The §11 dict; never raises for bad prompts: ``{"ok": False, "error", "error_code"}``."""
    try:
        return parse(text, version).to_dict()
    except PromptError as exc:
        return {"ok": False, "error": exc.message, "error_code": exc.code}


def parse_with(text: str, version: str, options: Options) -> tuple[ParsedPrompt, list[Occurrence]]:
    """``parse`` with policy hooks; also returns the occurrences ``options.drop`` removed."""
    if not isinstance(text, str):
        raise TypeError(f"prompt must be str, not {type(text).__name__}")
    context = normalise_context(version)
    if len(text) > HARD_LENGTH:
        raise errors.too_long()
    texts = expand(text, MAX_JOBS)
    permuted = texts is not None
    if texts is None:
        texts = [text]
    too_long = len(text) > options.max_length and len(text.strip()) > options.max_length
    results: list[ParsedPrompt] = []
    dropped: list[Occurrence] = []
    failures: list[tuple[int, int, PromptError]] = []
    for index, variant_text in enumerate(texts):
        try:
            results.append(_parse_variant(variant_text, context, options, permuted, too_long, dropped))
        except PromptError as exc:
            failures.append((exc.stage, index, exc))
    if failures:
        raise min(failures, key=lambda f: (f[0], f[1]))[2]
    first = results[0]
    repeats = [r.params.get("repeat", 1) for r in results]
    if not permuted and repeats[0] == 1:
        return first, dropped
    variants = [r for r, count in zip(results, repeats, strict=True) for _ in range(count)]
    if permuted and len(variants) > MAX_JOBS:
        raise errors.too_many_jobs(len(variants), MAX_JOBS)
    warnings: list[str] = []
    for r in results:
        for w in r.warnings:
            if w not in warnings:
                warnings.append(w)
    top = ParsedPrompt(
        text=first.text,
        image_urls=first.image_urls,
        params=first.params,
        segments=first.segments,
        warnings=warnings,
        effective_model=first.effective_model,
        job_count=len(variants),
        variants=variants,
    )
    return top, dropped


def _parse_variant(
    text: str,
    context: str,
    options: Options,
    permuted: bool,
    too_long: bool,
    dropped: list[Occurrence],
) -> ParsedPrompt:
    """Steps 2-9 of §1.2 for one (already expanded) prompt."""
    tokens = tokenise(text)
    raw_tokens = text.split() if EM_DASH in text else tokens  # strays are quoted as typed
    n_user = len(tokens)
    if options.extra:
        extra = list(options.extra)
        raw_tokens = tokens + extra if raw_tokens is tokens else raw_tokens + extra
        tokens = tokens + extra
    n = len(tokens)

    # Step 4: leading image prompts.
    i = 0
    images: list[str] = []
    link_error: PromptError | None = None
    while i < n and is_url(tokens[i]):
        if link_error is None and not is_image_url(tokens[i]):
            link_error = errors.bad_link(tokens[i])
        images.append(tokens[i])
        i += 1
    # Step 5: text up to the first parameter token.
    text_start = i
    while i < n:
        tok = tokens[i]
        if tok[0] == "-" and is_param_token(tok):
            break
        i += 1
    prompt_text = " ".join(tokens[text_start:i])

    # Step 6: the parameter section.
    occs: list[Occurrence] = []
    strays: list[str] = []
    first_stray = -1
    missing: tuple[int, str] | None = None
    while i < n:
        tok = tokens[i]
        spec = ALIASES.get(tok[2:].lower()) if is_param_token(tok) else None
        if spec is None:  # unknown name, or a value nobody asked for
            if first_stray < 0:
                first_stray = i
            strays.append(raw_tokens[i])
            i += 1
            continue
        key, arity = spec
        name = "--" + tok[2:].lower()
        j = i + 1
        if arity == OPT1:
            if j < n and niji_value_token(tokens[j]):
                j += 1
        elif arity == ONE:
            if j < n and not is_param_token(tokens[j]):
                j += 1
                if key == "ar":
                    j = _join_spaced_ratio(tokens, j, n)
        elif arity in (MANY, MANY0):
            while j < n and not is_param_token(tokens[j]):
                j += 1
        values = tokens[i + 1 : j]
        if key == "ar" and len(values) > 1:
            values = [" ".join(values)]
        user_written = i < n_user
        if user_written and key in options.refuse:
            raise errors.unsupported(name)
        occ = Occurrence(key, name, values, i)
        if user_written and key in options.drop:
            dropped.append(occ)
        elif arity != FLAG and arity != OPT1 and arity != MANY0 and not _has_value(key, values):
            if missing is None:
                missing = (i, name)
        else:
            occs.append(occ)
        i = j

    # Stage 2: links (leading image prompts first: they are leftmost).
    if link_error is not None:
        raise link_error
    for occ in occs:
        for url in link_values(occ):
            if not is_image_url(url):
                raise errors.bad_link(url)
    # Stage 3: stray tokens / missing values, whichever comes first.
    if missing is not None and (first_stray < 0 or missing[0] < first_stray):
        raise errors.missing_value(missing[1])
    if strays:
        raise errors.unrecognized(strays)

    # Model resolution (needed by stage 4 ranges): the first valid --v / --niji decides.
    model = context
    decided = False
    model_error: tuple[int, PromptError] | None = None
    for occ in occs:
        if occ.key in ("version", "niji"):
            try:
                occ.value = validate(occ, context, {})
            except PromptError as exc:
                model_error = model_error or (occ.pos, exc)
                continue
            if not decided:
                decided = True
                model = occ.value if occ.key == "version" else _niji_model(occ.value, context)

    # Stage 4: values, left to right.
    warnings: list[str] = []
    keys = {o.key for o in occs}
    vctx = {"warnings": warnings, "hd": "hd" in keys, "test": "test" in keys or "testp" in keys}
    for occ in occs:
        if occ.key in ("version", "niji"):
            if model_error is not None and model_error[0] == occ.pos:
                raise model_error[1]
            continue
        occ.value = validate(occ, model, vctx)
        if occ.key == "style" and occ.value == "raw":
            occ.key = "raw"
            occ.value = True

    # Build params: first occurrence wins, lists concatenate (§1.4).
    params: dict[str, Any] = {}
    first: dict[str, Occurrence] = {}
    conflicts: list[tuple[int, PromptError]] = []
    for occ in occs:
        key = occ.key
        if key in LIST_KEYS:
            if key in params:
                params[key].extend(occ.value)
            else:
                params[key] = list(occ.value)
                first[key] = occ
        elif key in params:
            if key in EXCLUSIVE_KEYS and params[key] != occ.value:
                conflicts.append((occ.pos, errors.incompatible(occ.name, first[key].name)))
            else:
                _warn(warnings, "duplicate_parameter")
        else:
            params[key] = occ.value
            first[key] = occ
    if "oref" in params:
        oref_urls = params["oref"]
        params["oref"] = oref_urls[0]
    else:
        oref_urls = []

    # Orphan --ow/--cw are stripped (web-updates-4) before the version check.
    for key, owner in (("ow", "oref"), ("cw", "cref")):
        if key in params and owner not in params:
            del params[key]
            del first[key]
            _warn(warnings, "orphan_parameter_dropped")

    # Stage 5: version compatibility, left to right.
    ordered = list(first.values())  # insertion order is already left to right
    for occ in ordered:
        key = occ.key
        if key in ("video", *VIDEO_ONLY, "version", "niji", "visibility"):
            continue
        check = "turbo" if key == "speed" and occ.value == "turbo" else key
        if check == "style":
            if model not in STYLE_VALUES:
                raise errors.version_conflict(occ.shown(), model_flag(model))
            continue
        supported = SUPPORT.get(check)
        if supported is not None and model not in supported:
            raise errors.version_conflict(occ.shown(), model_flag(model))

    # Stage 6: cross-parameter rules; the leftmost problem reports.
    has_text = bool(prompt_text)
    problems = conflicts
    if "version" in first and "niji" in first:
        a, b = sorted((first["version"], first["niji"]), key=lambda o: o.pos)
        problems.append((b.pos, errors.incompatible(b.name, a.name)))
    if len(oref_urls) > 1:
        problems.append((first["oref"].pos, errors.oref_count()))
    if "oref" in params:
        oref = first["oref"]
        if params.get("quality") == 4:
            q = first["quality"]
            problems.append((max(q.pos, oref.pos), errors.incompatible(f"{q.name} 4", "--oref")))
        if "draft" in params:
            d = first["draft"]
            problems.append((max(d.pos, oref.pos), errors.incompatible(d.name, "--oref")))
        if params.get("speed") == "turbo":
            t = first["speed"]
            problems.append((max(t.pos, oref.pos), errors.incompatible("--turbo", "--oref")))
    if "draft" in params and "tile" in params:
        d, t = first["draft"], first["tile"]
        problems.append((max(d.pos, t.pos), errors.incompatible(t.name, d.name)))
    if "loop" in params and "end" in params:
        a, b = sorted((first["loop"], first["end"]), key=lambda o: o.pos)
        problems.append((b.pos, errors.incompatible(b.name, a.name)))
    if "video" in params:
        for occ in ordered:
            if occ.key not in VIDEO_COMPATIBLE:
                problems.append((occ.pos, errors.incompatible(occ.name, "--video")))
                break
    else:
        for key in VIDEO_ONLY:
            if key in first:
                problems.append((first[key].pos, errors.requires_video(first[key].name)))
    sref_codes = any(not is_url(item["ref"]) for item in params.get("sref", ()))
    if "sv" in params and sref_codes and params["sv"] not in (4, 6):
        pos = max(first["sv"].pos, first["sref"].pos)
        problems.append((pos, errors.sref_needs_sv()))
    if len(images) >= 2 and not has_text:
        for key, shown in (("stylize", "--stylize"), ("weird", "--weird")):
            if key in params:
                problems.append((first[key].pos, errors.image_only(shown)))
    if params.get("speed") == "relax":
        relax = first["speed"]
        if permuted:
            problems.append((relax.pos, errors.permutation_relax()))
        if "repeat" in params:
            problems.append((max(relax.pos, first["repeat"].pos), errors.repeat_relax()))
    if problems:
        raise min(problems, key=lambda p: p[0])[1]

    # Non-fatal notes.
    if ("sw" in params or "sv" in params) and "sref" not in params:
        _warn(warnings, "orphan_parameter")
    if "iw" in params and not images:
        _warn(warnings, "orphan_parameter")
    if "seed" in params and params.get("speed") == "turbo":
        _warn(warnings, "seed_unreliable_in_turbo")

    # §6 multi-prompts.
    segments = None
    if "::" in prompt_text:
        if model in MULTI_PROMPT:
            segments = split_segments(prompt_text)
        else:
            _warn(warnings, "multi_prompt_unsupported")

    # Stage 7: structure (§9).
    video = "video" in params
    if not has_text and not images:
        raise errors.empty()
    if video and not images:
        raise errors.video_needs_image()
    if len(images) == 1 and not has_text and not video:
        raise errors.single_image()
    if not has_text:
        for occ in ordered:
            if occ.key in _REF_KINDS:
                raise errors.reference_needs_text(_REF_KINDS[occ.key])
    if segments is not None and not weight_total(segments, "no" in params) > 0:
        raise errors.weight_sum()
    if too_long:
        raise errors.too_long()

    return ParsedPrompt(
        text=prompt_text,
        image_urls=images,
        params=params,
        segments=segments,
        warnings=warnings,
        effective_model=model,
    )


def _niji_model(value: str, context: str) -> str:
    """Model of ``--niji N``; a bare ``--niji`` is the account's Niji, else the latest one."""
    if value != "latest":
        return f"niji {value}"
    return context if context.startswith("niji") else LATEST_NIJI


def _has_value(key: str, values: list[str]) -> bool:
    """A ONE/MANY parameter needs a value; for ``--no`` it must also survive comma splitting."""
    if not values:
        return False
    if key == "no":
        return any(term.strip() for term in " ".join(values).split(","))
    return True


def _join_spaced_ratio(tokens: list[str], j: int, n: int) -> int:
    """`--ar 16 : 9` is a malformed ratio (§5.1), not `16` plus stray `:` `9`: take the pieces."""
    if ":" in tokens[j - 1][:-1]:  # `16:9`, `16:9,` … are whole (if wrong) ratios already
        return j
    taken = 0
    while taken < _AR_JOIN_LIMIT and j < n and not is_param_token(tokens[j]):
        if not (tokens[j - 1].endswith(":") or tokens[j].startswith(":")):
            break
        j += 1
        taken += 1
    return j


def _warn(warnings: list[str], code: str) -> None:
    if code not in warnings:
        warnings.append(code)
