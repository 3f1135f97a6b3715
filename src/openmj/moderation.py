"""Content moderation: banned words in prompts, and an optional nudity classifier on outputs.

Prompt rules (docs/moderation.md):
- plain entries match whole words or whole phrases, case-insensitively, after folding accents,
  full-width forms and invisible characters ("NÜDE", "ｎｕｄｅ", "nu\u200bde" all read "nude");
  separators between the words of a phrase do not matter ("child-porn" matches "child porn");
- an entry ending in "*" matches words that start with it ("porn*": porn, porno, pornographic);
- letters spelled out one by one ("n.u.d.e", "n u d e", "n-u-d-e") are read as one word;
- entries in scripts written without spaces (Chinese, Japanese, Thai) match anywhere;
- "re:<regex>" entries are regular expressions from a safe subset that runs in linear time.

Every check is linear in the prompt length: one pass to normalise, one to split words, a bounded
number of set look-ups per word, and regexes whose work per position is bounded (see
``compile_safe_regex``). Python's ``re`` backtracks, so the subset, not the engine, is the guarantee.
"""

from __future__ import annotations

import os
import re
import re._constants as _sre  # type: ignore[import-not-found]  # the stdlib regex parser, no stubs
import re._parser as _sre_parser  # type: ignore[import-not-found]
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

ENV_WORDS = "OPENMJ_MODERATION_WORDS"
ENV_IMAGE = "OPENMJ_IMAGE_MODERATION"
ENV_IMAGE_THRESHOLD = "OPENMJ_IMAGE_MODERATION_THRESHOLD"

#: A floor, not a policy: terms that are unambiguous in an image prompt. Operators add their own
#: with OPENMJ_MODERATION_WORDS. Left out on purpose: "gore" (Al Gore), "erection" (of a
#: building), "shoot", "kill", "blood" (everyday and artistic uses).
DEFAULT_WORDS: tuple[str, ...] = (
    # sexual content involving minors
    "csam",
    "loli",
    "lolicon",
    "shota",
    "shotacon",
    "pedo",
    "pedophile*",
    "paedophile*",
    "underage sex",
    "underage nude",
    # explicit sexual content
    "porn*",
    "hentai",
    "xxx",
    "nsfw",
    "nude",
    "nudes",
    "nudity",
    "naked",
    "sex",
    "intercourse",
    "blowjob",
    "handjob",
    "cumshot",
    "masturbat*",
    "orgasm*",
    "genitals",
    "genitalia",
    "penis",
    "vagina",
    "dildo",
    "bdsm",
    # gore
    "gory",
    "dismember*",
    "decapitat*",
    "disembowel*",
    "eviscerat*",
    "mutilat*",
    "behead*",
    "snuff film",
)

REGEX_PREFIX = "re:"
MAX_REGEX_CHARS = 200  # a moderation rule, not a program
MAX_REPEAT = 32  # largest {m,n} upper bound; unbounded * + {m,} are refused
MAX_REGEX_PATHS = 4096  # backtracking choices per start position (see _paths)
MAX_SPELLED_RUN = 3  # at least this many single letters in a row are read as one word

_WORD = re.compile(r"[^\W_]+")  # letters and digits; "_" separates like punctuation
_NO_SPACES = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def normalize(text: str) -> str:
    """Case-fold and fold away what only changes the look of a word: accents, full-width and
    other compatibility forms, zero-width and other invisible format characters."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFKC", kept).casefold()


@dataclass(frozen=True)
class PromptVerdict:
    allowed: bool
    word: str | None = None  # the banned entry (or, for prefix and regex entries, the text) found


ALLOWED = PromptVerdict(True, None)


# ------------------------------------------------------------------ configuration parsing
def split_entries(value: str) -> list[str]:
    """Split a comma-separated list. Commas inside (), [] or {} or after a backslash belong to a
    regex entry ("re:a{1,3}" stays whole); blanks are dropped."""
    entries: list[str] = []
    depth = 0
    current: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            entries.append("".join(current))
            current = []
            continue
        current.append(ch)
    entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def compile_safe_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` if it belongs to the linear-time subset; ValueError says why not.

    The subset: at most MAX_REGEX_CHARS characters; no backreferences, lookarounds or
    conditionals; every repeat bounded ({m,n} with n ≤ MAX_REPEAT, or ?) and no repeat inside
    another; at most MAX_REGEX_PATHS ways for the pattern to match from one position. Then the
    work at each position of the text is bounded by a constant, so a search is linear.
    """
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"longer than {MAX_REGEX_CHARS} characters")
    try:
        parsed = _sre_parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    paths = _paths(parsed, inside_repeat=False)
    if paths > MAX_REGEX_PATHS:
        raise ValueError(f"too many alternatives ({paths} > {MAX_REGEX_PATHS} ways to match)")
    return re.compile(pattern, re.IGNORECASE)


# re._parser is CPython's own regex parser (sre_parse before 3.11): reading its tree is the only
# exact way to know what a pattern contains. Its node names are stable across 3.11-3.13.
_SIMPLE = {_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN, _sre.AT, _sre.CATEGORY}
_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
_REFUSED = {
    _sre.GROUPREF: "backreferences",
    _sre.GROUPREF_EXISTS: "conditionals",
    _sre.ASSERT: "lookarounds",
    _sre.ASSERT_NOT: "lookarounds",
}


def _paths(seq: Sequence[tuple[Any, Any]], *, inside_repeat: bool) -> int:
    """Upper bound of the choices backtracking can try from one start position."""
    total = 1
    for op, av in seq:
        if op in _SIMPLE:
            n = 1
        elif op is _sre.SUBPATTERN:
            n = _paths(av[-1], inside_repeat=inside_repeat)
        elif op is _sre.ATOMIC_GROUP:
            n = _paths(av, inside_repeat=inside_repeat)
        elif op is _sre.BRANCH:
            n = sum(_paths(branch, inside_repeat=inside_repeat) for branch in av[1])
        elif op in _REPEATS:
            low, high, body = av
            if high is _sre.MAXREPEAT or high > MAX_REPEAT:
                raise ValueError(f"unbounded or large repeat: use {{m,n}} with n <= {MAX_REPEAT}")
            if inside_repeat:
                raise ValueError("a repeat inside a repeat (catastrophic backtracking)")
            body_paths = _paths(body, inside_repeat=True)
            n = sum(body_paths**k for k in range(low, high + 1))
        elif op in _REFUSED:
            raise ValueError(f"{_REFUSED[op]} are not allowed")
        else:
            raise ValueError(f"unsupported construct {op}")
        total *= n
        if total > MAX_REGEX_PATHS:
            return total  # already too many; no need to count further (or overflow)
    return total


# ------------------------------------------------------------------ prompt moderation
class PromptModerator:
    """Banned words, phrases and patterns in prompts. Build once; ``check`` is thread-safe."""

    def __init__(
        self,
        words: Iterable[str] = DEFAULT_WORDS,
        extra: Iterable[str] = (),
        patterns: Iterable[str] = (),
    ) -> None:
        self._phrases: dict[tuple[str, ...], str] = {}
        self._first_words: set[str] = set()
        self._max_phrase = 0
        self._prefixes: dict[str, str] = {}
        self._prefix_lengths: list[int] = []
        self._spelled: dict[str, str] = {}  # single words (and prefixes) also found spelled out
        self._substrings: dict[str, str] = {}
        self._regexes: list[re.Pattern[str]] = []
        for entry in [*words, *extra]:
            self._add(entry)
        for pattern in patterns:
            self._add(REGEX_PREFIX + pattern)
        self._prefix_lengths = sorted({len(p) for p in self._prefixes})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PromptModerator:
        """The default list plus OPENMJ_MODERATION_WORDS (comma-separated; "re:" for regexes)."""
        env = os.environ if environ is None else environ
        return cls(extra=split_entries(env.get(ENV_WORDS, "")))

    def _add(self, entry: str) -> None:
        entry = entry.strip()
        if not entry:
            return
        if entry.startswith(REGEX_PREFIX):
            try:
                self._regexes.append(compile_safe_regex(entry[len(REGEX_PREFIX) :]))
            except ValueError as exc:
                raise ValueError(f"moderation entry {entry!r}: {exc}") from None
            return
        norm = normalize(entry)
        if _NO_SPACES.search(norm):
            self._substrings[norm.strip()] = entry
            return
        prefix = norm.endswith("*")
        tokens = _WORD.findall(norm)
        if not tokens:
            raise ValueError(f"moderation entry {entry!r} has no letters or digits")
        if prefix:
            if len(tokens) != 1:
                raise ValueError(f"moderation entry {entry!r}: '*' only ends a single word")
            self._prefixes[tokens[0]] = entry
        else:
            self._phrases[tuple(tokens)] = entry
            self._first_words.add(tokens[0])
            self._max_phrase = max(self._max_phrase, len(tokens))
        if len(tokens) == 1 and len(tokens[0]) >= MAX_SPELLED_RUN:
            self._spelled[tokens[0]] = entry

    def check(self, text: str) -> PromptVerdict:
        norm = normalize(text)
        tokens = _WORD.findall(norm)
        return (
            self._check_words(tokens)
            or self._check_spelled(tokens)
            or self._check_substrings(norm)
            or self._check_regexes(norm)
            or ALLOWED
        )

    def _check_words(self, tokens: list[str]) -> PromptVerdict | None:
        phrases, prefixes = self._phrases, self._prefixes
        count = len(tokens)
        for i, token in enumerate(tokens):
            if token in self._first_words:
                for k in range(1, min(self._max_phrase, count - i) + 1):
                    hit = phrases.get(tuple(tokens[i : i + k]))
                    if hit is not None:
                        return PromptVerdict(False, hit)
            for length in self._prefix_lengths:
                if length > len(token):
                    break
                if token[:length] in prefixes:
                    return PromptVerdict(False, token)
        return None

    def _check_spelled(self, tokens: list[str]) -> PromptVerdict | None:
        """Runs of single letters ("n.u.d.e") joined into one string and searched for the single
        -word entries. Joined runs have no word boundaries, so any occurrence counts."""
        if not self._spelled:
            return None
        run: list[str] = []
        for token in [*tokens, ""]:  # "" ends the last run
            if len(token) == 1:
                run.append(token)
                continue
            if len(run) >= MAX_SPELLED_RUN:
                joined = "".join(run)
                for word, entry in self._spelled.items():
                    if word in joined:
                        return PromptVerdict(False, entry.rstrip("*"))
            run = []
        return None

    def _check_substrings(self, norm: str) -> PromptVerdict | None:
        for needle, entry in self._substrings.items():
            if needle in norm:
                return PromptVerdict(False, entry)
        return None

    def _check_regexes(self, norm: str) -> PromptVerdict | None:
        for rx in self._regexes:
            m = rx.search(norm)
            if m is not None:
                return PromptVerdict(False, m.group(0)[:100])
        return None


# ------------------------------------------------------------------ image moderation
class ImageModerator(Protocol):
    def flagged(self, images: list[Image.Image]) -> list[bool]:
        """One answer per image, in order: True = remove it."""
        ...


#: NudeNet 3 classes for exposed sexual body parts. Covered parts, faces, bellies, feet and
#: armpits (the other classes it knows) are not flagged.
NUDENET_CLASSES: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
NUDENET_MIN_SCORE = 0.2  # NudeNet drops detections below this itself


def is_flagged(detections: Iterable[Mapping[str, Any]], threshold: float, classes: frozenset[str]) -> bool:
    """The decision: any detection of a flagged class at or above the threshold."""
    return any(d["class"] in classes and float(d["score"]) >= threshold for d in detections)


def to_bgr(image: Image.Image) -> np.ndarray:
    """A PIL image as the contiguous 8-bit BGR array NudeNet expects (what cv2.imread returns).
    Transparent pixels are composited on white, as a viewer would show them."""
    import numpy as np
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(background, rgba).convert("RGB")
    else:
        rgb = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


class NudeNetModerator:
    """NudeNet's detector (ships its 320n.onnx model; runs offline on CPU), loaded on first use."""

    def __init__(self, threshold: float = 0.6, classes: frozenset[str] = NUDENET_CLASSES) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.classes = frozenset(classes)
        self._detector: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (else the first ``flagged`` call does); a start-up can call this to
        fail early and keep the first task fast."""
        with self._lock:
            if self._detector is None:
                from nudenet import NudeDetector

                self._detector = NudeDetector()

    def detections(self, images: list[Image.Image]) -> list[list[dict[str, Any]]]:
        """NudeNet's raw detections per image: ``{"class", "score", "box"}`` dicts."""
        if not images:
            return []
        self.load()
        # onnxruntime sessions are safe to run from several threads at once
        return list(self._detector.detect_batch([to_bgr(im) for im in images], batch_size=4))

    def flagged(self, images: list[Image.Image]) -> list[bool]:
        return [is_flagged(d, self.threshold, self.classes) for d in self.detections(images)]


def image_moderator_from_env(environ: Mapping[str, str] | None = None) -> ImageModerator | None:
    """OPENMJ_IMAGE_MODERATION=nudenet|off (default off); OPENMJ_IMAGE_MODERATION_THRESHOLD
    (default 0.6). Raises RuntimeError if nudenet is asked for but not installed."""
    env = os.environ if environ is None else environ
    choice = env.get(ENV_IMAGE, "").strip().lower()
    if choice in ("", "off", "none", "0", "false", "no"):
        return None
    if choice != "nudenet":
        raise ValueError(f"{ENV_IMAGE} must be 'nudenet' or 'off', not {choice!r}")
    try:
        import nudenet  # noqa: F401 - fail at start-up, not at the first finished task
    except ImportError as exc:
        raise RuntimeError(
            f"{ENV_IMAGE}=nudenet needs the nudenet package: pip install 'openmj[moderation]' ({exc})"
        ) from None
    raw = env.get(ENV_IMAGE_THRESHOLD, "").strip()
    try:
        threshold = float(raw) if raw else 0.6
    except ValueError:
        raise ValueError(f"{ENV_IMAGE_THRESHOLD} must be a number, not {raw!r}") from None
    return NudeNetModerator(threshold=threshold)
