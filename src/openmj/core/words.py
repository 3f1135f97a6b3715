"""Describe and Shorten: the two operations whose result is words, not pictures.

Describe turns an image into four prompts (Midjourney's /describe); Shorten ranks a prompt's
words by how much each changes the text encoder's reading of it and offers five shorter prompts
(/shorten). The engine measures (captions, per-word effects); the rules for turning that into
prompts, and for the buttons that imagine them, are here, pure (docs/describe-shorten.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from openmj.core.prompt.translation import split_parameters
from openmj.core.tasks import ErrorCode, Operation, Status, Task, TaskError

DESCRIBE_PROMPTS = 4  # Midjourney's /describe answers with four prompts
SHORTEN_PROMPTS = 5  # and /shorten with five shorter ones
MAX_DESCRIBED_WORDS = 60  # a long paragraph caption is cut to a prompt's length
SHORTEN_MIN_WORDS = 2
SHORTEN_MAX_WORDS = 150  # CLIP reads 77 tokens; words past them measure as having no effect
# Shorten keeps these shares of the words, most important first (five distinct lengths)
SHORTEN_KEEP = (0.8, 0.65, 0.5, 0.35, 0.2)
MAX_ASPECT_TERM = 32  # an exact ratio with larger terms is approximated (1023×683 → 3:2)
_COMMON = ((1, 1), (5, 4), (4, 3), (3, 2), (16, 10), (16, 9), (2, 1), (21, 9), (3, 1))
COMMON_RATIOS = tuple(Fraction(a, b) for a, b in _COMMON) + tuple(Fraction(b, a) for a, b in _COMMON[1:])

# captioners open with these; a prompt names the subject directly
_LEAD_INS = re.compile(
    r"^(?:the|this)\s+(?:image|picture|photo(?:graph)?|painting|illustration)\s+"
    r"(?:shows|depicts|features|is of|is|contains|captures)\s+|^in\s+this\s+(?:image|picture),?\s+",
    re.IGNORECASE,
)
_STRUCTURAL = re.compile(r"--+|::|[{}<>]")  # would start a parameter, a weight or a permutation
_SPACES = re.compile(r"\s+")
_WORD_EDGE = re.compile(r"^\W+|\W+$")


def aspect_text(width: int, height: int) -> str:
    """The image's aspect ratio as `--ar` writes it: exact when its terms are small (5:4), else
    the common ratio it is within 2 % of (1456×816 → 16:9), else the nearest with small terms."""
    ratio = Fraction(width, height)
    if max(ratio.numerator, ratio.denominator) > MAX_ASPECT_TERM:
        near = [c for c in COMMON_RATIOS if abs(c / ratio - 1) <= 0.02]
        ratio = min(near, key=lambda c: abs(c - ratio)) if near else ratio.limit_denominator(16)
    return f"{ratio.numerator}:{ratio.denominator}"


def caption_to_prompt(caption: str) -> str:
    """A caption as prompt text: no lead-in ("The image shows"), no structure characters, at
    most MAX_DESCRIBED_WORDS words, no final full stop."""
    text = _SPACES.sub(" ", _STRUCTURAL.sub(" ", caption)).strip()
    text = _LEAD_INS.sub("", text).strip()
    words = text.split(" ")
    if len(words) > MAX_DESCRIBED_WORDS:
        text = " ".join(words[:MAX_DESCRIBED_WORDS])
    text = text.rstrip(" .")
    return text[:1].lower() + text[1:] if text[:2].istitle() or text[:1].isupper() else text


def describe_output(captions: list[str], width: int, height: int) -> dict[str, Any]:
    """The result of a DESCRIBE task: four prompts ending in the image's `--ar`."""
    ar = aspect_text(width, height)
    prompts = [f"{p} --ar {ar}" for p in (caption_to_prompt(c) for c in captions) if p]
    if len(prompts) < DESCRIBE_PROMPTS:
        raise TaskError(ErrorCode.GENERATION_FAILED, "The captioning model gave too few descriptions", 500)
    return {"prompts": prompts[:DESCRIBE_PROMPTS], "aspect": ar}


# ---------------------------------------------------------------------------- shorten


def shorten_words(text: str) -> list[str]:
    """The units Shorten ranks: the prose's words as written (punctuation stays attached)."""
    return text.split()


def check_shortenable(text: str) -> None:
    n = len(shorten_words(text))
    if n < SHORTEN_MIN_WORDS:
        raise TaskError(
            ErrorCode.INVALID_PROMPT, "Shorten needs a prompt of at least two words", 400, param="prompt"
        )
    if n > SHORTEN_MAX_WORDS:
        raise TaskError(
            ErrorCode.INVALID_PROMPT,
            f"Shorten reads at most {SHORTEN_MAX_WORDS} words (this prompt has {n})",
            400,
            param="prompt",
        )


@dataclass(frozen=True)
class Ranked:
    word: str
    score: float  # 0..1, 1 = the word that changes the prompt's embedding most


def shorten_output(prompt: str, text: str, effects: list[float]) -> dict[str, Any]:
    """The result of a SHORTEN task from each word's measured effect on the embedding: the
    ranked words and up to five shorter prompts (fewer when the prompt has too few words to make
    five different ones), each followed by the prompt's own image links and parameters."""
    words = shorten_words(text)
    if len(effects) != len(words):
        raise ValueError("one effect per word")
    top = max(effects) if effects and max(effects) > 0 else 1.0
    scores = [max(0.0, e) / top for e in effects]
    order = sorted(range(len(words)), key=lambda i: (-scores[i], i))
    links, params = _links_and_parameters(prompt)
    prompts: list[str] = []
    for share in SHORTEN_KEEP:
        keep = max(1, min(len(words) - 1, math.ceil(share * len(words))))
        kept = sorted(order[:keep])
        line = _tidy(" ".join(words[i] for i in kept))
        candidate = " ".join(p for p in (links, line, params) if p)
        if line and candidate not in prompts:
            prompts.append(candidate)
    return {
        "tokens": [[w, round(s, 4)] for w, s in zip(words, scores, strict=True)],
        "prompts": prompts[:SHORTEN_PROMPTS],
    }


def _links_and_parameters(prompt: str) -> tuple[str, str]:
    prose, params = split_parameters(prompt)
    links = [t for t in prose.split() if t.lower().startswith(("http://", "https://"))]
    return " ".join(links), params.strip()


def _tidy(line: str) -> str:
    """Commas left dangling by a removed word go: "red fox, , snow," → "red fox, snow"."""
    line = re.sub(r"(?:\s*,)+\s*,", ",", line)
    return line.strip(" ,;")


def ranked(output: dict[str, Any]) -> list[Ranked]:
    return [Ranked(str(w), float(s)) for w, s in output.get("tokens", [])]


# ---------------------------------------------------------------------------- follow-ups


def _finished_words(task: Task, operation: Operation) -> dict[str, Any]:
    if task.operation is not operation:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"Task {task.id} is not a {operation.value} task",
            400,
            param="taskId",
        )
    if task.status is not Status.COMPLETED or not task.output:
        raise TaskError(
            ErrorCode.TASK_NOT_READY, f"Task {task.id} is {task.status.value}; it has no prompts yet", 400
        )
    return task.output


def chosen_prompt(task: Task, number: int, operation: Operation) -> str:
    """Prompt `number` (from 1) of a finished DESCRIBE or SHORTEN task (`operation`): what
    PicReader N and PromptAnalyzer N imagine."""
    prompts = _finished_words(task, operation).get("prompts") or []
    if not 1 <= number <= len(prompts):
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS,
            f"Task {task.id} offers prompts 1 to {len(prompts)} (got {number})",
            400,
            param="customId",
        )
    return str(prompts[number - 1])


def describe_again(task: Task) -> dict[str, Any]:
    """The params of a new DESCRIBE of the same image (Retry): a new task draws a new seed."""
    if task.operation is not Operation.DESCRIBE:
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Task {task.id} is not a describe task", 400, param="taskId"
        )
    return {"image_url": task.spec.get("options", {}).get("image_url", "")}
