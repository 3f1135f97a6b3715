"""Actions on a finished image with the local pipelines: upscale, vary/remix, zoom, pan, square, enhance."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from openmj.core import actions as A
from openmj.core.mapping import GenerationPlan
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local.generate import (
    TRANSFORMER_FAMILIES,
    generators,
    prompt_kwargs,
    seamless,
    size_kwargs,
    step_callback,
)
from openmj.engines.local.pipelines import Pipelines

RESAMPLE = Image.Resampling.LANCZOS  # every resize of a source image uses this (tests rely on it)
VAE_TILING_PIXELS = 1536 * 1536  # decode bigger images in tiles, or the VAE needs many GB
UPSCALE_MAX_DIFFUSION_SIDE_FACTOR = 4  # diffuse at most 4× the model's native side; Lanczos beyond
# a transformer's attention grows with the square of the pixel count: at most 2× its native side
UPSCALE_MAX_DIFFUSION_SIDE_FACTOR_TRANSFORMER = 2
#: families whose image-to-image runs through their inpaint pipeline with an all-white mask
IMG2IMG_BY_INPAINT = frozenset({"flux2-klein"})


@contextlib.contextmanager
def vae_tiling(pipe: Any, width: int, height: int) -> Iterator[None]:
    tiled = width * height > VAE_TILING_PIXELS and hasattr(pipe, "vae")
    if tiled:
        pipe.vae.enable_tiling()
    try:
        yield
    finally:
        if tiled:
            pipe.vae.disable_tiling()


def img2img(
    pipes: Pipelines,
    plan: GenerationPlan,
    image: Image.Image,
    strength: float,
    control: JobControl,
    n: int,
) -> list[Image.Image]:
    pipe = pipes.variant("img2img")
    steps = A.img2img_steps(plan.steps, strength)
    run_steps = max(1, int(steps * strength))
    extra = size_kwargs(pipes.family, image.width, image.height)
    if pipes.family in IMG2IMG_BY_INPAINT:
        extra["mask_image"] = Image.new("L", image.size, 255)
    with vae_tiling(pipe, image.width, image.height), seamless(pipe, plan.tile), torch.inference_mode():
        out = pipe(
            image=image.convert("RGB"),
            strength=strength,
            num_inference_steps=steps,
            guidance_scale=plan.guidance,
            generator=generators(plan.seeds[:n]),
            num_images_per_prompt=1,
            callback_on_step_end=step_callback(control, run_steps, None),
            **prompt_kwargs(pipes.family, plan, n),
            **extra,
        ).images
    control.check()
    return [im.convert("RGB") for im in out]


def outpaint(
    pipes: Pipelines, plan: GenerationPlan, source: Image.Image, canvas: A.Canvas, control: JobControl
) -> list[Image.Image]:
    """Paint everything outside `canvas.source`; those source pixels are pasted back exactly."""
    box = canvas.source
    placed = source.convert("RGB")
    if placed.size != (box.width, box.height):
        placed = placed.resize((box.width, box.height), RESAMPLE)
    base = edge_fill(placed, canvas)
    mask = Image.new("L", (canvas.width, canvas.height), 255)  # white = paint
    mask.paste(0, box.corners)
    return inpaint_call(pipes, plan, base, mask, control, A.OUTPAINT_STRENGTH)


def inpaint_call(
    pipes: Pipelines,
    plan: GenerationPlan,
    base: Image.Image,
    mask: Image.Image,
    control: JobControl,
    strength: float,
) -> list[Image.Image]:
    """Repaint the white part of `mask` (one image per seed); every black pixel is pasted back exactly."""
    pipe = pipes.variant("inpaint")
    w, h = base.size
    with vae_tiling(pipe, w, h), seamless(pipe, plan.tile), torch.inference_mode():
        out = pipe(
            image=base,
            mask_image=mask,
            height=h,
            width=w,
            strength=strength,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance,
            generator=generators(plan.seeds),
            num_images_per_prompt=1,
            callback_on_step_end=step_callback(control, plan.steps, None),
            **prompt_kwargs(pipes.family, plan, len(plan.seeds)),
        ).images
    control.check()
    return [paste_back(im, base, mask) for im in out]


def edge_fill(placed: Image.Image, canvas: A.Canvas) -> Image.Image:
    """The source on the canvas, its border pixels stretched outwards (a better start than grey)."""
    box = canvas.source
    arr = np.asarray(placed)
    pad = ((box.y, canvas.height - box.y - box.height), (box.x, canvas.width - box.x - box.width), (0, 0))
    return Image.fromarray(np.pad(arr, pad, mode="edge"))


def paste_back(generated: Image.Image, base: Image.Image, mask: Image.Image) -> Image.Image:
    """Composite with a mask feathered only inside the painted area: kept pixels stay exact."""
    generated = generated.convert("RGB")
    if generated.size != base.size:
        generated = generated.resize(base.size, RESAMPLE)
    soft = mask.filter(ImageFilter.GaussianBlur(A.OUTPAINT_FEATHER_PX / 2))
    soft = Image.fromarray(np.minimum(np.asarray(soft), np.asarray(mask)))
    return Image.composite(generated, base, soft)


def _source(job: EngineJob) -> Image.Image:
    return job.images["source"].convert("RGB")


def upscale(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    opts = job.task.spec["options"]
    src = _source(job)
    seed = job.task.spec["source"].get("seed")
    factor = int(opts["factor"])
    if factor == 1:  # midjourney-proxy U1–U4: separate the image from the grid, no compute
        return EngineResult(images=[src], seeds=[seed])
    final = A.upscale_size(src.width, src.height, factor)
    factor_cap = (
        UPSCALE_MAX_DIFFUSION_SIDE_FACTOR_TRANSFORMER
        if pipes.family in TRANSFORMER_FAMILIES
        else UPSCALE_MAX_DIFFUSION_SIDE_FACTOR
    )
    shrink = min(1.0, pipes.profile.native_size * factor_cap / max(final))
    m = pipes.profile.size_multiple
    diffuse = (int(final[0] * shrink) // m * m, int(final[1] * shrink) // m * m)
    strength = A.UPSCALE_CREATIVE_STRENGTH if opts["mode"] == "creative" else A.UPSCALE_SUBTLE_STRENGTH
    one = replace(plan, seeds=plan.seeds[:1])
    out = img2img(pipes, one, src.resize(diffuse, RESAMPLE), strength, control, 1)[0]
    if out.size != final:
        out = out.resize(final, RESAMPLE)
    return EngineResult(images=[out], seeds=list[int | None](one.seeds))


def variation(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = _source(job)
    strength = (
        A.VARY_STRONG_STRENGTH if job.task.spec["options"]["strength"] == "strong" else A.VARY_SUBTLE_STRENGTH
    )
    images = img2img(pipes, plan, src, strength, control, len(plan.seeds))
    return EngineResult(images=images, seeds=list(plan.seeds))


def zoom(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = _source(job)
    canvas = A.zoom_canvas(src.width, src.height, float(job.task.spec["options"]["scale"]))
    return EngineResult(images=outpaint(pipes, plan, src, canvas, control), seeds=list(plan.seeds))


def pan(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = _source(job)
    opts = job.task.spec["options"]
    canvas = A.pan_canvas(
        src.width, src.height, opts["direction"], float(opts["scale"]), pipes.profile.size_multiple
    )
    return EngineResult(images=outpaint(pipes, plan, src, canvas, control), seeds=list(plan.seeds))


def make_square(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = _source(job)
    canvas = A.square_canvas(src.width, src.height, pipes.profile.size_multiple)
    return EngineResult(images=outpaint(pipes, plan, src, canvas, control), seeds=list(plan.seeds))


def enhance(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    """The draft image enlarged to the full size, re-rendered with the same seed and prompt."""
    src = _source(job)
    seed = job.task.spec["source"].get("seed")
    one = replace(plan, seeds=[int(seed) if seed is not None else plan.seeds[0]])
    out = img2img(pipes, one, src.resize((plan.width, plan.height), RESAMPLE), A.ENHANCE_STRENGTH, control, 1)
    return EngineResult(images=out, seeds=list(one.seeds))
