"""Running a `GenerationPlan` through a diffusers pipeline: seeds, progress, stop, tile, chaos."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from PIL import Image

from openmj.core.families import family as family_traits
from openmj.core.mapping import GenerationPlan
from openmj.engines.base import JobControl

TRANSFORMER_FAMILIES = frozenset({"flux2-klein", "z-image", "flux1"})


def generators(seeds: list[int]) -> list[torch.Generator]:
    # CPU generators: the same seed gives the same latents on CPU and GPU (diffusers moves them)
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def step_callback(
    control: JobControl, total_steps: int, stop_after: int | None, start: float = 0.0, span: float = 1.0
) -> Callable[..., dict[str, Any]]:
    """Progress from sampler steps; stops the sampler on cancel/time-out or at --stop."""

    def callback(pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        control.report(start + span * (i + 1) / max(1, total_steps))
        if control.stop_reason() or (stop_after is not None and i + 1 >= stop_after):
            pipe._interrupt = True  # diffusers' documented way to end the loop at this step
        return kwargs

    return callback


@contextlib.contextmanager
def seamless(pipe: Any, enabled: bool) -> Iterator[None]:
    """--tile: circular padding in every convolution of the UNet and VAE, restored afterwards."""
    if not enabled:
        yield
        return
    convs = [
        m
        for part in (pipe.unet, pipe.vae)
        for m in part.modules()
        if isinstance(m, torch.nn.Conv2d) and any(p > 0 for p in m.padding)
    ]
    for m in convs:
        m.padding_mode = "circular"
    try:
        yield
    finally:
        for m in convs:
            m.padding_mode = "zeros"


def chaos_embeddings(pipe: Any, plan: GenerationPlan, device: str) -> dict[str, Any]:
    """--chaos: per-image Gaussian jitter on the prompt embeddings, seeded by each image's seed."""
    if plan.chaos_sigma <= 0 or not hasattr(pipe, "encode_prompt") or getattr(pipe, "text_encoder_2", None):
        return {}
    do_cfg = plan.guidance > 1.0 and pipe.unet.config.time_cond_proj_dim is None
    negative = [plan.negative_prompt] * len(plan.prompts) if plan.negative_prompt else None
    embeds, neg_embeds = pipe.encode_prompt(plan.prompts, device, 1, do_cfg, negative)
    jittered = []
    for i, seed in enumerate(plan.seeds):
        g = torch.Generator("cpu").manual_seed(int(seed) ^ 0x5EED)
        noise = torch.randn(embeds[i].shape, generator=g).to(embeds.device, embeds.dtype)
        jittered.append(embeds[i] + noise * plan.chaos_sigma * embeds[i].std())
    out: dict[str, Any] = {"prompt_embeds": torch.stack(jittered)}
    if neg_embeds is not None:
        out["negative_prompt_embeds"] = neg_embeds
    return out


def prompt_kwargs(family: str, plan: GenerationPlan, n: int) -> dict[str, Any]:
    """The prompts of `n` images and the negative terms the way the family takes them."""
    prompts = plan.prompts if len(plan.prompts) == n else [plan.prompts[0]] * n
    kw: dict[str, Any] = {"prompt": prompts[:n]}
    traits = family_traits(family)
    if plan.negative_prompt and traits.negative != "none":
        kw["negative_prompt"] = [plan.negative_prompt] * n
        if traits.negative == "true_cfg":  # FLUX.1: a negative pass only when there are terms
            kw["true_cfg_scale"] = traits.true_cfg_scale
    return kw


def size_kwargs(family: str, width: int, height: int) -> dict[str, Any]:
    """The transformer pipelines' image-to-image and inpaint calls default to their native size
    unless told the image's own; SD's follow the image."""
    return {"width": width, "height": height} if family in TRANSFORMER_FAMILIES else {}


def run_plan(
    pipe: Any,
    plan: GenerationPlan,
    control: JobControl,
    device: str,
    *,
    family: str = "sd15",
    progress_start: float = 0.0,
    progress_span: float = 1.0,
    **extra: Any,
) -> list[Image.Image]:
    """One pipeline call for all images of the plan (one per seed)."""
    n = len(plan.seeds)
    kwargs: dict[str, Any] = {
        "height": plan.height,
        "width": plan.width,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generators(plan.seeds),
        "num_images_per_prompt": 1,
        "callback_on_step_end": step_callback(
            control, plan.stop_steps or plan.steps, plan.stop_steps, progress_start, progress_span
        ),
    }
    embeds = chaos_embeddings(pipe, plan, device)
    kwargs |= embeds or prompt_kwargs(family, plan, n)
    kwargs |= extra
    with seamless(pipe, plan.tile), torch.inference_mode():
        images = pipe(**kwargs).images
    control.check()  # cancelled or timed out during the loop: do not return a half-made result
    return [im.convert("RGB") for im in images]
