"""Midjourney parameters → diffusion settings (docs/reference/mj-prompt.md §12, docs/models.md).

Midjourney documents what its parameters do, not how. Each mapping below is a named constant
with the Midjourney behaviour it imitates and why this value. The engine applies the resulting
`GenerationPlan`; nothing here imports torch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from openmj.core.families import SD15, Family
from openmj.core.prompt import grid_size
from openmj.core.tasks import Speed

GRID_IMAGES = 4  # every Midjourney job is a 2×2 grid of four images (seeds s, s+1, s+2, s+3)
MJ_NATIVE_SIDE = 1024  # a V7 1:1 grid image is 1024×1024 (mj-prompt.md §5.3); sizes are scaled from it
MAX_SEED = 2**32 - 1  # Midjourney seeds are 0–4294967295

# --draft: "half the cost, ~10× faster" → half the steps and half the side length of a grid image
DRAFT_STEP_FACTOR = 0.5
DRAFT_SIZE_FACTOR = 0.5

# V8.x drafts: "24 lightweight 0.5K sketches" instead of a grid of four (EvoLink's mj-v8.1 page)
V8_DRAFT_IMAGES = 24
# V8.x top-level quality "hd" (native HD): the long side twice as large, so both sides ×2
HD_SIZE_FACTOR = 2.0

# --quality: more GPU time = more detail, not more pixels → scale the step count
QUALITY_STEP_FACTOR = {0.25: 0.5, 0.5: 0.75, 1.0: 1.0, 2.0: 1.5, 4.0: 2.0}

# --stylize 0–1000 (default 100): low = literal, high = artistic and less faithful →
# guidance is the preset's at 100, up to +25 % at 0 (stick to the text), down to −30 % at 1000
STYLIZE_DEFAULT = 100
STYLIZE_GUIDANCE_AT_0 = 1.25
STYLIZE_GUIDANCE_AT_1000 = 0.70
# Midjourney's house aesthetic is on unless --raw (or a very low --s): a style suffix stands in for it
AESTHETIC_SUFFIX = "beautiful composition, rich detail, dramatic lighting"
AESTHETIC_MIN_STYLIZE = 50

# --chaos 0–100: how different the four grid images are. Besides the seeds, each image's prompt
# embedding gets Gaussian jitter with σ (relative to the embedding's own spread) up to this at 100
CHAOS_MAX_EMBED_SIGMA = 0.35

# --weird 0–3000: "unusual, off-distribution" → up to three odd style terms per image, chosen by
# the image's own seed (Midjourney says weird is not seed-stable; ours is, which is stricter)
WEIRD_TERMS = (
    "surreal",
    "uncanny",
    "dreamlike distortion",
    "glitch art",
    "impossible geometry",
    "bioluminescent",
    "baroque oddity",
    "fever dream",
)
WEIRD_PER_TERM = 1000

# --exp 0–100: "more detail, dynamism, tone-mapped; less prompt accuracy" → a detail/HDR suffix
# from exp 10 on and up to +30 % guidance at 100 (stronger, more contrasted rendering)
EXP_SUFFIX = "high dynamic range, intricate detail"
EXP_SUFFIX_FROM = 10
EXP_MAX_GUIDANCE_BOOST = 0.3

# --stop 10–100: finish early → softer, less detailed: run only that share of the steps
STOP_MIN_STEPS = 1


@dataclass(frozen=True)
class GenerationPlan:
    prompts: list[str]
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance: float
    seeds: list[int]
    tile: bool = False
    stop_steps: int | None = None  # stop after this many steps (--stop), None = all
    chaos_sigma: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def model_size(ar: str, native_side: int, multiple: int, scale: float = 1.0) -> tuple[int, int]:
    """The V7 grid size for `ar`, scaled to the model's native size, sides multiples of `multiple`.

    V7 1:1 is 1024², so a 512-native model renders at half the V7 size in each direction. The
    V7 table's sides are multiples of 16, so halving keeps multiples of 8 and the exact V7 ratio.
    """
    w, h = grid_size(ar)
    f = native_side / MJ_NATIVE_SIDE * scale
    return _snap(w * f, multiple), _snap(h * f, multiple)


def _snap(x: float, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


def grid_seeds(base: int, n: int = GRID_IMAGES) -> list[int]:
    return [(base + i) % (MAX_SEED + 1) for i in range(n)]


def grid_images(version: str | None, draft: bool) -> int:
    """How many images a job makes: four, or a V8.x draft's 24 sketches."""
    return V8_DRAFT_IMAGES if draft and (version or "").split(".")[0] == "8" else GRID_IMAGES


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def stylize_guidance(base: float, stylize: int | None) -> float:
    s = STYLIZE_DEFAULT if stylize is None else stylize
    if s <= STYLIZE_DEFAULT:
        factor = STYLIZE_GUIDANCE_AT_0 + (1.0 - STYLIZE_GUIDANCE_AT_0) * s / STYLIZE_DEFAULT
    else:
        factor = 1.0 + (STYLIZE_GUIDANCE_AT_1000 - 1.0) * (s - STYLIZE_DEFAULT) / (1000 - STYLIZE_DEFAULT)
    return round(base * factor, 4)


def exp_guidance_factor(exp: float) -> float:
    return 1 + EXP_MAX_GUIDANCE_BOOST * min(max(exp, 0.0), 100.0) / 100


def quality_steps(steps: int, quality: float | None) -> int:
    if quality is None:
        return steps
    keys = sorted(QUALITY_STEP_FACTOR)
    nearest = min(keys, key=lambda k: abs(k - float(quality)))
    return max(1, int(math.ceil(steps * QUALITY_STEP_FACTOR[nearest])))


def weird_terms(seed: int, weird: int | None) -> list[str]:
    if not weird:
        return []
    count = min(3, max(1, round(weird / WEIRD_PER_TERM)))
    rng = random.Random(seed)
    return rng.sample(WEIRD_TERMS, count)


def prompt_text(text: str, segments: list[dict[str, Any]] | None) -> tuple[str, list[str]]:
    """The positive text and the negative terms carried by `::` weights.

    Open pipelines take one prompt string: concepts with a positive weight are kept (in order),
    concepts with a negative weight become negative-prompt terms (Midjourney: `--no x` ≡ `x::-.5`).
    """
    if not segments:
        return text, []
    positive = [s["text"].strip() for s in segments if float(s.get("weight", 1)) > 0 and s["text"].strip()]
    negative = [s["text"].strip() for s in segments if float(s.get("weight", 1)) < 0 and s["text"].strip()]
    return ", ".join(positive), negative


def plan_generation(
    *,
    text: str,
    params: dict[str, Any],
    segments: list[dict[str, Any]] | None,
    seed: int,
    speed: Speed,
    native_side: int,
    size_multiple: int,
    steps: int,
    guidance: float,
    n_images: int | None = None,
    family: Family = SD15,
    version: str | None = None,
    hd: bool = False,
) -> GenerationPlan:
    """Build the plan for an imagine-like job from the parsed prompt (mj-prompt.md §11 params).

    `family` decides which knobs reach the sampler (core/families.py): guidance moves with --s and
    --exp only under classifier-free guidance, --no only where there is a negative branch."""
    draft = speed is Speed.DRAFT or bool(params.get("draft"))
    ar = params.get("ar", "1:1")
    scale = DRAFT_SIZE_FACTOR if draft else HD_SIZE_FACTOR if hd else 1.0
    width, height = model_size(ar, native_side, size_multiple, scale)
    if n_images is None:
        n_images = grid_images(version, draft)

    n_steps = quality_steps(steps, params.get("quality"))
    if draft:
        n_steps = max(1, int(n_steps * DRAFT_STEP_FACTOR))

    positive, weighted_negative = prompt_text(text, segments)
    raw = bool(params.get("raw"))
    stylize = params.get("stylize")
    if not raw and (stylize is None or stylize >= AESTHETIC_MIN_STYLIZE) and positive:
        positive = f"{positive}, {AESTHETIC_SUFFIX}"

    exp = float(params.get("exp") or 0)
    if exp >= EXP_SUFFIX_FROM and positive:
        positive = f"{positive}, {EXP_SUFFIX}"

    seeds = grid_seeds(seed, n_images)
    prompts = []
    for s in seeds:
        terms = weird_terms(s, params.get("weird"))
        prompts.append(", ".join([positive, *terms]) if terms else positive)

    negatives = [*params.get("no", []), *weighted_negative]
    stop = params.get("stop")
    stop_steps = None
    if stop is not None and int(stop) < 100:
        stop_steps = max(STOP_MIN_STEPS, int(round(n_steps * int(stop) / 100)))

    chaos = params.get("chaos") or 0
    if family.stylize_guidance:
        guidance = round(stylize_guidance(guidance, stylize) * exp_guidance_factor(exp), 4)
    return GenerationPlan(
        prompts=prompts,
        negative_prompt=", ".join(negatives) if negatives and family.negative != "none" else None,
        width=width,
        height=height,
        steps=n_steps,
        guidance=guidance,
        seeds=seeds,
        tile=bool(params.get("tile")) and family.tile,
        stop_steps=stop_steps,
        chaos_sigma=CHAOS_MAX_EMBED_SIGMA * min(100, int(chaos)) / 100 if family.chaos_embeddings else 0.0,
    )
