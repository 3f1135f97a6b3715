"""Prompt translation as a core step: only the words are translated, the prompt's structure is kept.

A prompt is cut into pieces before any model sees it: image links, `::` weights, `{a, b}`
permutation braces and commas, and every parameter are kept verbatim; the prose, each option of a
permutation and each item of a `--no` list are translated one by one and put back where they were.
The English prompt is then parsed like any other, so every rule still applies to what the model
reads (docs/prompt.md, "Translation").

What detects the language and what translates is a `Translator` given by the caller (openmj.language
runs a language detector and Marian models); this module has no model and no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from openmj.core.spec import TranslationSpec

from .tokens import is_param_token, is_url, tokenise
from .weights import WEIGHT_RE

#: Chinese, Japanese and Korean: scripts an English text encoder cannot read at all, and what
#: midjourney-proxy deployments translate by default (with Baidu or GPT there)
CJK = frozenset({"zh", "ja", "ko"})
SCOPES = ("off", "cjk", "all")  # what is translated: nothing, CJK text only, any non-English text
NEGATIVE = "--no"

_HAS_LETTER = re.compile(r"[^\W\d_]")
# what a translation may not bring into a prompt: parameter dashes, weights, braces
_STRUCTURAL = re.compile(r"--+|::|[{}<>]")
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"\S+")
_TOKEN_OR_SPACE = re.compile(r"\s+|\S+")


class Translator(Protocol):
    """Detects a text's language and translates texts of one language into English."""

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code ("zh", "es", "en"), or None when the text shows no language."""

    def translate(self, texts: Sequence[str], language: str) -> list[str]:
        """Each text (of `language`) in English, in order."""


@dataclass(frozen=True)
class Piece:
    text: str
    translate: bool  # a run of words to translate; else kept as it is


@dataclass(frozen=True)
class Translation:
    """What was done to a prompt: the detected language, the English prompt, and each piece."""

    language: str
    original: str
    prompt: str  # the English prompt, structure and parameters as sent
    pairs: tuple[tuple[str, str], ...]  # (source words, their English) for every translated piece

    def record(self) -> TranslationSpec:
        """The task's stored note (spec["translation"])."""
        return {
            "language": self.language,
            "original": self.original,
            "prompt": self.prompt,
            "pieces": [list(p) for p in self.pairs],
        }


def pieces(prompt: str) -> list[Piece]:
    """The prompt cut into kept and translatable pieces; joining every piece's text gives the
    prompt back exactly."""
    out: list[Piece] = []
    param_at = _first_parameter(prompt)
    _prose(prompt[:param_at], out)
    _parameters(prompt[param_at:], out)
    return out


def split_parameters(prompt: str) -> tuple[str, str]:
    """(the prose and image links, the parameters from the first `--x` on)."""
    at = _first_parameter(prompt)
    return prompt[:at], prompt[at:]


def _first_parameter(prompt: str) -> int:
    """Where the parameters start: the first `--x` token (an em dash counts, as for the parser)."""
    for m in re.finditer(r"\S+", prompt):
        token = tokenise(m.group())
        if token and is_param_token(token[0]):
            return m.start()
    return len(prompt)


def _prose(text: str, out: list[Piece]) -> None:
    """Links and `::` weights are kept; braces and the commas between their options are kept."""
    depth = 0
    buf: list[str] = []

    def flush() -> None:
        if buf:
            _words("".join(buf), out)
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        url = _TOKEN.match(text, i) if (i == 0 or text[i - 1].isspace()) else None
        if url and is_url(url.group()):
            flush()
            out.append(Piece(url.group(), False))
            i += len(url.group())
            continue
        weight = WEIGHT_RE.match(text, i) if ch == ":" else None
        if weight:
            flush()
            out.append(Piece(weight.group(), False))
            i = weight.end()
            continue
        if ch in "{}" or (ch == "," and depth > 0):
            flush()
            depth = depth + 1 if ch == "{" else max(0, depth - 1) if ch == "}" else depth
            out.append(Piece(ch, False))
        else:
            buf.append(ch)
        i += 1
    flush()


def _parameters(text: str, out: list[Piece]) -> None:
    """Every parameter is kept, except the items of a `--no` list, which are words."""
    value: list[str] = []  # the text of the `--no` value being read

    def flush() -> None:
        for part in re.split(r"([,{}])", "".join(value)):
            if part in (",", "{", "}"):
                out.append(Piece(part, False))
            elif part:
                _words(part, out)
        value.clear()

    in_no = False
    for m in _TOKEN_OR_SPACE.finditer(text):
        token = m.group()
        normal = tokenise(token)[0] if not token.isspace() else ""
        if is_param_token(normal):
            flush()
            in_no = normal.lower() == NEGATIVE
            out.append(Piece(token, False))
        elif in_no:
            value.append(token)
        else:
            out.append(Piece(token, False))
    flush()


def _words(text: str, out: list[Piece]) -> None:
    """A run of prose: its leading and trailing spaces are kept apart, so the translation slots
    back between them; a run with no letters (numbers, punctuation) is kept."""
    core = text.strip()
    if not core or not _HAS_LETTER.search(core):
        out.append(Piece(text, False))
        return
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    if lead:
        out.append(Piece(lead, False))
    out.append(Piece(core, True))
    if trail:
        out.append(Piece(trail, False))


def _clean(english: str, source: str) -> str:
    """A translation may not add structure (a `--` would start a parameter); empty → the source."""
    text = _SPACES.sub(" ", _STRUCTURAL.sub(" ", english)).strip()
    return text or source


def _needs(piece: str, language: str) -> bool:
    """In a CJK prompt, a piece written only in Latin letters is already readable (a name, an
    English word) and is kept; in other languages every piece is translated."""
    return language not in CJK or not piece.isascii()


def words_of(prompt: str) -> str:
    """The prompt's translatable words, for language detection."""
    return " ".join(p.text for p in pieces(prompt) if p.translate)


def translate_prompt(prompt: str, translator: Translator, scope: str) -> Translation | None:
    """The prompt in English, or None when `scope` leaves it as it is (off, English, or not CJK
    under "cjk")."""
    if scope == "off":
        return None
    parts = pieces(prompt)
    words = " ".join(p.text for p in parts if p.translate)
    if not words:
        return None
    language = translator.detect(words)
    if language is None or language == "en" or (scope == "cjk" and language not in CJK):
        return None
    todo = [i for i, p in enumerate(parts) if p.translate and _needs(p.text, language)]
    if not todo:
        return None
    english = translator.translate([parts[i].text for i in todo], language)
    texts = [p.text for p in parts]
    pairs = []
    for i, raw in zip(todo, english, strict=True):
        texts[i] = _clean(raw, parts[i].text)
        pairs.append((parts[i].text, texts[i]))
    return Translation(language, prompt, "".join(texts), tuple(pairs))
