"""Midjourney parameters → diffusion settings (openmj.core.mapping): each mapping does what it says."""

from __future__ import annotations

from typing import Any

import pytest

from openmj.core import mapping as M
from openmj.core.tasks import Speed


def plan(
    params: dict[str, Any] | None = None,
    *,
    text: str = "a cat",
    speed: Speed = Speed.FAST,
    segments: list[dict[str, Any]] | None = None,
) -> M.GenerationPlan:
    return M.plan_generation(
        text=text,
        params=params or {},
        segments=segments,
        seed=10,
        speed=speed,
        native_side=512,
        size_multiple=8,
        steps=4,
        guidance=7.5,
    )


def test_grid_seeds_and_default_size() -> None:
    p = plan()
    assert p.seeds == [10, 11, 12, 13] and (p.width, p.height) == (512, 512)
    assert M.grid_seeds(M.MAX_SEED) == [M.MAX_SEED, 0, 1, 2]


@pytest.mark.parametrize(("ar", "size"), [("16:9", (728, 408)), ("2:3", (448, 672)), ("21:9", (840, 360))])
def test_sizes_are_the_v7_table_scaled(ar: str, size: tuple[int, int]) -> None:
    assert (lambda p: (p.width, p.height))(plan({"ar": ar})) == size


def test_draft_halves_steps_and_sides() -> None:
    p = plan(speed=Speed.DRAFT)
    assert (p.width, p.height, p.steps) == (256, 256, 2)
    assert plan({"draft": True}).steps == 2


def test_stylize_moves_guidance_and_raw_drops_the_aesthetic() -> None:
    assert plan({"stylize": 0}).guidance > plan().guidance > plan({"stylize": 1000}).guidance
    assert M.AESTHETIC_SUFFIX in plan().prompts[0]
    assert M.AESTHETIC_SUFFIX not in plan({"raw": True}).prompts[0]
    assert M.AESTHETIC_SUFFIX not in plan({"stylize": 0}).prompts[0]


def test_quality_scales_steps() -> None:
    assert [plan({"quality": q}).steps for q in (0.5, 1, 2, 4)] == [3, 4, 6, 8]


def test_exp_adds_detail_and_guidance() -> None:
    p = plan({"exp": 100})
    assert M.EXP_SUFFIX in p.prompts[0] and p.guidance == pytest.approx(7.5 * 1.3)
    assert M.EXP_SUFFIX not in plan({"exp": 5}).prompts[0]


def test_weird_terms_follow_each_image_seed() -> None:
    p = plan({"weird": 3000})
    assert all(len(set(M.WEIRD_TERMS) & set(pr.split(", "))) == 3 for pr in p.prompts)
    assert plan({"weird": 3000}).prompts == p.prompts  # seeded: repeatable
    assert plan().prompts == ["a cat, " + M.AESTHETIC_SUFFIX] * 4


def test_chaos_sets_embedding_jitter() -> None:
    assert plan().chaos_sigma == 0 and plan({"chaos": 100}).chaos_sigma == M.CHAOS_MAX_EMBED_SIGMA


def test_negative_prompt_from_no_and_negative_weights() -> None:
    p = plan(
        {"no": ["trees", "cars"]}, segments=[{"text": "a dog", "weight": 2}, {"text": "rain", "weight": -0.5}]
    )
    assert p.negative_prompt == "trees, cars, rain"
    assert p.prompts[0].startswith("a dog")
    assert plan().negative_prompt is None


def test_stop_and_tile() -> None:
    assert plan({"stop": 50}).stop_steps == 2 and plan({"stop": 100}).stop_steps is None
    assert plan({"tile": True}).tile and not plan().tile
