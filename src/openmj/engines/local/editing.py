"""Images in: vary region, editor canvas, upload-paint, retexture, remove background."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from openmj.core import actions as A
from openmj.core.mapping import GenerationPlan
from openmj.core.spec import OptionsSpec
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local.generate import generators, prompt_kwargs, step_callback
from openmj.engines.local.pipelines import Pipelines
from openmj.engines.local.redraw import RESAMPLE, img2img, inpaint_call, vae_tiling
from openmj.media.masks import rasterize

INPAINT_STRENGTH = 1.0  # Vary Region repaints the selection with new content (Fooocus "Modify Content")
# the editor works at most at this many pixels (1.25 × the model's native side, squared); larger
# canvases are scaled down as a whole, keeping the layout
EDIT_MAX_SIDE_FACTOR = 1.25
# retexture: with an edge ControlNet the structure comes from the edges, so the surface can be
# almost fully redrawn; without one, a middle img2img strength keeps the layout
RETEXTURE_STRENGTH_CONTROLNET = 0.9
RETEXTURE_STRENGTH_PLAIN = 0.6
RETEXTURE_CONTROL_SCALE = 0.8
EDGE_THRESHOLD = 40


def _snap(x: float, m: int = 8) -> int:
    return max(m, int(round(x / m)) * m)


def fit_budget(width: int, height: int, native: int) -> float:
    """Scale factor (≤ 1) so width × height fits the editor's pixel budget."""
    budget = (native * EDIT_MAX_SIDE_FACTOR) ** 2
    return min(1.0, math.sqrt(budget / (width * height)))


def inpaint(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = job.images["source"].convert("RGB")
    mask = rasterize(job.task.spec["options"]["mask"], src.size, job.images.get("mask"))
    if mask.getextrema()[1] == 0:
        return EngineResult(images=[src.copy() for _ in plan.seeds], seeds=list(plan.seeds))
    images = inpaint_call(pipes, plan, src, mask, control, INPAINT_STRENGTH)
    return EngineResult(images=images, seeds=list(plan.seeds))


def _canvas(pipes: Pipelines, image: Image.Image, opts: OptionsSpec, mask_image: Image.Image | None):
    """Place the image on the (scaled) canvas; the repaint mask is outside it plus the user's mask."""
    cw, ch = opts["canvas"]["width"], opts["canvas"]["height"]
    f = fit_budget(cw, ch, pipes.profile.native_size)
    m = pipes.profile.size_multiple
    W, H = _snap(cw * f, m), _snap(ch * f, m)
    sx, sy = W / cw, H / ch
    pos = opts["img_pos"]
    x, y = int(round(pos["x"] * sx)), int(round(pos["y"] * sy))
    bw, bh = max(1, int(round(pos["width"] * sx))), max(1, int(round(pos["height"] * sy)))
    placed = image.convert("RGB").resize((bw, bh), RESAMPLE)
    base = Image.new("RGB", (W, H), (127, 127, 127))
    base.paste(placed, (x, y))
    keep = Image.new("L", (W, H), 0)
    keep.paste(255, (x, y, x + bw, y + bh))
    repaint = ImageOps.invert(keep)
    if opts.get("mask"):
        user = rasterize(opts["mask"], (W, H), mask_image)
        repaint = Image.fromarray(np.maximum(np.asarray(repaint), np.asarray(user)))
    # start the painted area from the placed image's stretched edges rather than flat grey
    return _edge_extend(base, keep), repaint


def _edge_extend(base: Image.Image, keep: Image.Image) -> Image.Image:
    arr = np.asarray(base).copy()
    k = np.asarray(keep) > 0
    ys, xs = np.nonzero(k)
    if len(xs) == 0:
        return base
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    H, W = k.shape
    yy = np.clip(np.arange(H), y0, y1)
    xx = np.clip(np.arange(W), x0, x1)
    stretched = arr[yy][:, xx]
    arr[~k] = stretched[~k]
    return Image.fromarray(arr)


def edit(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    key = "source" if "source" in job.images else "upload"
    base, repaint = _canvas(pipes, job.images[key], job.task.spec["options"], job.images.get("mask"))
    if repaint.getextrema()[1] == 0:
        return EngineResult(images=[base.copy() for _ in plan.seeds], seeds=list(plan.seeds))
    images = inpaint_call(pipes, plan, base, repaint, control, INPAINT_STRENGTH)
    return EngineResult(images=images, seeds=list(plan.seeds))


def fit_image(image: Image.Image, native: int, multiple: int = 8) -> Image.Image:
    f = fit_budget(image.width, image.height, native)
    size = (_snap(image.width * f, multiple), _snap(image.height * f, multiple))
    return image.convert("RGB").resize(size, RESAMPLE) if size != image.size else image.convert("RGB")


def edges(image: Image.Image) -> Image.Image:
    """A canny-like edge map without OpenCV: gradient magnitude, thresholded, white on black."""
    e = image.convert("L").filter(ImageFilter.FIND_EDGES)
    return e.point(lambda v: 255 if v > EDGE_THRESHOLD else 0).convert("RGB")


def retexture(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    src = fit_image(job.images["upload"], pipes.profile.native_size, pipes.profile.size_multiple)
    pipe = pipes.controlnet_pipeline()
    if pipe is None:
        return EngineResult(
            images=img2img(pipes, plan, src, RETEXTURE_STRENGTH_PLAIN, control, len(plan.seeds)),
            seeds=list(plan.seeds),
        )
    strength = RETEXTURE_STRENGTH_CONTROLNET
    steps = A.img2img_steps(plan.steps, strength)
    with vae_tiling(pipe, *src.size), torch.inference_mode():
        out = pipe(
            **prompt_kwargs(pipes.family, plan, len(plan.seeds)),
            image=src,
            control_image=edges(src),
            strength=strength,
            controlnet_conditioning_scale=RETEXTURE_CONTROL_SCALE,
            num_inference_steps=steps,
            guidance_scale=plan.guidance,
            generator=generators(plan.seeds),
            num_images_per_prompt=1,
            callback_on_step_end=step_callback(control, max(1, int(steps * strength)), None),
        ).images
    control.check()
    return EngineResult(
        images=[im.convert("RGB") for im in out],
        seeds=list(plan.seeds),
    )


def remove_bg(pipes: Pipelines, job: EngineJob, control: JobControl, plan: GenerationPlan) -> EngineResult:
    control.report(0.1)
    cut = pipes.segmenter().cut_out(job.images["upload"])
    control.check()
    return EngineResult(images=[cut], seeds=[None])
