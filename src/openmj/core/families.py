"""Model families: what each kind of diffusion model can do and how Midjourney's knobs reach it.

Pure data, known without loading a model, so the API process can refuse what a model cannot do
before anything is charged, and the planner (core/mapping.py) can map `--s`, `--no`, `--tile` and
`--chaos` the way each family understands them. docs/models.md has the table in prose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: how a family reads reference images (`--sref`, `--oref`, image prompts):
#: "ip_adapter" — an IP-Adapter with a scale per slot (SD 1.5, SDXL);
#: "native" — the pipeline takes reference images itself (FLUX.2 klein's multi-reference editing);
#: "img2img" — none: image prompts become the img2img start and --sref/--oref are refused.
References = Literal["ip_adapter", "native", "img2img"]
#: how `--no` and negative `::` weights reach the sampler:
#: "cfg" — a negative prompt under classifier-free guidance (guidance > 1);
#: "true_cfg" — a second, negative pass (FLUX.1's `true_cfg_scale`): twice the compute, only when asked;
#: "none" — a guidance-distilled model with no negative branch: the terms are dropped (and said so).
Negative = Literal["cfg", "true_cfg", "none"]


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    size_multiple: int  # image sides: the VAE's factor × the transformer's patch size
    references: References
    negative: Negative
    # --stylize moves the guidance scale only where guidance is classifier-free guidance; the
    # distilled transformer families run at a fixed guidance, so --s keeps only its aesthetic suffix
    stylize_guidance: bool
    tile: bool  # --tile: circular padding in every convolution (a UNet has them, a transformer has none)
    chaos_embeddings: bool  # --chaos jitters the prompt embeddings (the SD text encoders' output)
    retexture: Literal["controlnet", "img2img"]
    # FLUX.1's negative pass strength when --no is given ("true_cfg"); 1.0 = off
    true_cfg_scale: float = 1.0


SD15 = Family(
    name="sd15",
    label="Stable Diffusion 1.5",
    size_multiple=8,
    references="ip_adapter",
    negative="cfg",
    stylize_guidance=True,
    tile=True,
    chaos_embeddings=True,
    retexture="controlnet",
)
SDXL = Family(
    name="sdxl",
    label="Stable Diffusion XL",
    size_multiple=8,
    references="ip_adapter",
    negative="cfg",
    stylize_guidance=True,
    tile=True,
    chaos_embeddings=False,  # two text encoders: the jitter is tuned for one (engines/local/generate.py)
    retexture="controlnet",
)
FLUX2_KLEIN = Family(
    name="flux2-klein",
    label="FLUX.2 [klein]",
    size_multiple=16,
    references="native",
    negative="none",  # the distilled 4B runs without classifier-free guidance
    stylize_guidance=False,
    tile=False,
    chaos_embeddings=False,
    retexture="img2img",
)
Z_IMAGE = Family(
    name="z-image",
    label="Z-Image",
    size_multiple=16,
    references="img2img",
    negative="none",  # Turbo is distilled for guidance 0: no negative branch
    stylize_guidance=False,
    tile=False,
    chaos_embeddings=False,
    retexture="img2img",
)
FLUX1 = Family(
    name="flux1",
    label="FLUX.1",
    size_multiple=16,
    # FLUX.1's reference model (Redux) and its fill model are published under the FLUX.1 [dev]
    # non-commercial licence only, so the Apache-2.0 schnell preset goes without them
    references="img2img",
    negative="true_cfg",
    stylize_guidance=False,
    tile=False,
    chaos_embeddings=False,
    retexture="img2img",
    true_cfg_scale=1.5,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (SD15, SDXL, FLUX2_KLEIN, Z_IMAGE, FLUX1)}


def family(name: str) -> Family:
    return FAMILIES.get(name, SD15)
