"""Model presets: a name → where the weights are, which pipeline family, and how to sample.

Pure data (no torch import), so the API process can describe models without loading them.
`--model` accepts a preset name, a Hugging Face id or a local folder (see `resolve_preset`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    name: str
    source: str  # hub id or local folder; "tiny" = built offline into the data dir
    family: str  # "sd15" | "sdxl" | "flux2-klein" | "z-image" | "flux1" (core/families.py)
    steps: int
    guidance: float
    native_size: int
    scheduler: str = "default"  # "lcm" | "euler" | "euler_trailing" | "default"
    lora: str | None = None  # hub id or folder of a LoRA fused at load time
    lora_weight_name: str | None = None
    licence: str = ""
    device: str = "auto"  # "cpu" prefers CPU even when CUDA is present
    ip_adapter: str | None = None  # hub id or folder holding an IP-Adapter (for --sref/--oref/--iw)
    ip_adapter_subfolder: str = "models"
    ip_adapter_weight_name: str = "ip-adapter_sd15.safetensors"
    # background removal: an ONNX salient-object model, "hub-id:file" or a folder/file path
    segmenter: str | None = "onnx-community/BiRefNet_lite-ONNX:onnx/model.onnx"  # MIT licence
    # retexture keeps structure with an edge (canny) ControlNet when the preset names one
    controlnet: str | None = None
    description: str = ""
    video: str | None = None  # the video preset served next to it unless --video-model says otherwise
    pipeline: str = "StableDiffusionPipeline"  # the diffusers class the weights load with
    vram_gb: float = 0.0  # GPU memory the preset needs in its CUDA dtype, without offload (about)


PRESETS: dict[str, Preset] = {
    # Default: runs on CPU in a few seconds per grid. SD 1.5 is CreativeML OpenRAIL-M and the
    # LCM-LoRA is OpenRAIL++-M: both allow commercial use (with the licences' use restrictions).
    "sd15-lcm": Preset(
        name="sd15-lcm",
        source="stable-diffusion-v1-5/stable-diffusion-v1-5",
        family="sd15",
        steps=4,
        guidance=1.5,  # LCM-LoRA works at 1–2; above 1 keeps classifier-free guidance, so --no works
        native_size=512,
        scheduler="lcm",
        lora="latent-consistency/lcm-lora-sdv1-5",
        licence="CreativeML OpenRAIL-M (SD 1.5) + OpenRAIL++-M (LCM-LoRA): commercial use allowed",
        ip_adapter="h94/IP-Adapter",
        ip_adapter_weight_name="ip-adapter_sd15.safetensors",
        controlnet="lllyasviel/control_v11p_sd15_canny",
        description="SD 1.5 + LCM-LoRA, 4 steps, 512 px: the CPU default",
    ),
    # GPU: SDXL-Lightning 4-step LoRA on SDXL base, 1024 px. OpenRAIL++-M: commercial use allowed.
    "sdxl-lightning": Preset(
        name="sdxl-lightning",
        source="stabilityai/stable-diffusion-xl-base-1.0",
        family="sdxl",
        steps=4,
        guidance=1.0,  # Lightning is distilled for CFG off; --no has no effect on this preset
        native_size=1024,
        scheduler="euler_trailing",
        lora="ByteDance/SDXL-Lightning",
        lora_weight_name="sdxl_lightning_4step_lora.safetensors",
        licence="CreativeML OpenRAIL++-M: commercial use allowed",
        ip_adapter="h94/IP-Adapter",
        ip_adapter_subfolder="sdxl_models",
        ip_adapter_weight_name="ip-adapter_sdxl.safetensors",
        controlnet="diffusers/controlnet-canny-sdxl-1.0",
        description="SDXL-Lightning 4-step, 1024 px: the GPU preset",
        pipeline="StableDiffusionXLPipeline",
        vram_gb=9,
    ),
    # FLUX.2 [klein] 4B: distilled to 4 steps, a Qwen3 text encoder, and reference images taken
    # natively (multi-reference editing), which --sref, --oref and image prompts use. Apache-2.0.
    "flux2-klein-4b": Preset(
        name="flux2-klein-4b",
        source="black-forest-labs/FLUX.2-klein-4B",
        family="flux2-klein",
        steps=4,
        guidance=1.0,  # step-distilled: the pipeline ignores guidance; --no has no effect
        native_size=1024,
        scheduler="native",
        licence="Apache-2.0: commercial use allowed",
        pipeline="Flux2KleinPipeline",
        vram_gb=13,
        description="FLUX.2 [klein] 4B, 4 steps, 1024 px, native reference images: the best GPU quality",
    ),
    # Z-Image-Turbo (Tongyi-MAI, 6B): 8 steps at guidance 0, strong photorealism and text. Apache-2.0.
    "z-image-turbo": Preset(
        name="z-image-turbo",
        source="Tongyi-MAI/Z-Image-Turbo",
        family="z-image",
        steps=8,
        guidance=0.0,  # Turbo is distilled for guidance 0 (no negative branch)
        native_size=1024,
        scheduler="native",
        licence="Apache-2.0: commercial use allowed",
        pipeline="ZImagePipeline",
        vram_gb=16,
        description="Z-Image-Turbo 6B, 8 steps, 1024 px; no reference images (--sref/--oref refused)",
    ),
    # FLUX.1 [schnell] (12B): 1–4 steps, guidance-distilled. Apache-2.0 (its Fill and Redux
    # companions are FLUX.1 [dev] models under a non-commercial licence, so they are not used).
    "flux1-schnell": Preset(
        name="flux1-schnell",
        source="black-forest-labs/FLUX.1-schnell",
        family="flux1",
        steps=4,
        guidance=0.0,
        native_size=1024,
        scheduler="native",
        licence="Apache-2.0: commercial use allowed",
        pipeline="FluxPipeline",
        vram_gb=34,
        description="FLUX.1 [schnell] 12B, 4 steps, 1024 px; no reference images (--sref/--oref refused)",
    ),
    # Random weights, real pipeline classes, built offline: tests and offline trials.
    "tiny": Preset(
        name="tiny",
        source="tiny",
        family="sd15",
        steps=4,
        guidance=7.5,
        native_size=512,
        scheduler="euler",
        licence="random weights (no licence needed)",
        ip_adapter="tiny",
        ip_adapter_weight_name="ip-adapter_tiny.safetensors",
        segmenter="tiny",
        controlnet="tiny",
        description="tiny random-weight SD pipeline (meaningless pictures, real code path)",
        video="tiny-video",
    ),
}


def _tiny_twin(real: str, name: str) -> Preset:
    """A random-weight twin of a real preset: the same pipeline and component classes and folder
    layout (engines/local/tiny_families.py), built offline, at a quarter of the side."""
    base = PRESETS[real]
    return replace(
        base,
        name=name,
        source="tiny",
        steps=2,
        native_size=256,
        licence="random weights (no licence needed)",
        segmenter="tiny",
        vram_gb=0,
        description=f"tiny random-weight twin of {real} ({base.pipeline}): meaningless pictures, real code",
    )


TINY_TWINS = {
    "tiny-flux2-klein": "flux2-klein-4b",
    "tiny-z-image": "z-image-turbo",
    "tiny-flux1-schnell": "flux1-schnell",
}
PRESETS |= {name: _tiny_twin(real, name) for name, real in TINY_TWINS.items()}
DEFAULT_PRESET = "sd15-lcm"


@dataclass(frozen=True)
class VideoPreset:
    """An image-to-video model (`WanImageToVideoPipeline`), loaded on the first video job."""

    name: str
    source: str  # hub id or folder; "tiny" = built offline into the data dir
    fps: float  # the frame rate the model was trained at: clips are seconds × fps (+1) frames
    steps: int
    guidance: float
    licence: str
    description: str
    # the model is Wan 2.1 FLF2V (first-last-frame): end frames and loops are conditioned in
    # the sampler, not only by the final cross-fade (engines/local/video.py)
    end_frame: bool = True
    # render at this fraction of the output side and resample the frames up: the tiny preset's
    # random weights are pictures of noise at any size, so it spares the CPU; real presets use 1
    render_scale: float = 1.0


VIDEO_PRESETS: dict[str, VideoPreset] = {
    # Wan 2.1 first-last-frame 14B: the one Wan checkpoint trained to end on a given frame, which
    # --end, --loop and smooth extends need. Apache-2.0: commercial use allowed. GPU only (~40 GB
    # in bf16; a 5 s 720p clip takes minutes on one H100-class GPU).
    "wan21-flf2v-720p": VideoPreset(
        name="wan21-flf2v-720p",
        source="Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
        fps=16,
        steps=30,
        guidance=5.0,
        licence="Apache-2.0: commercial use allowed",
        description="Wan 2.1 FLF2V 14B: start and end frame conditioning, 480p and 720p",
    ),
    # Wan 2.1 image-to-video 14B at 480p: the start frame only; end frames and loops come from
    # the closing cross-fade alone. Apache-2.0.
    "wan21-i2v-480p": VideoPreset(
        name="wan21-i2v-480p",
        source="Wan-AI/Wan2.1-I2V-14B-480P-diffusers",
        fps=16,
        steps=30,
        guidance=5.0,
        licence="Apache-2.0: commercial use allowed",
        description="Wan 2.1 I2V 14B 480p: start frame conditioning",
        end_frame=False,
    ),
    "tiny-video": VideoPreset(
        name="tiny-video",
        source="tiny",
        fps=8,
        steps=2,
        guidance=1.0,
        licence="random weights (no licence needed)",
        description="tiny random-weight Wan I2V pipeline (meaningless clips, real code path)",
        render_scale=0.25,
    ),
}
NO_VIDEO = ("", "none", "off")


def resolve_video_preset(model: Preset, video_model: str | None) -> VideoPreset | None:
    """The video model a worker serves: --video-model (a preset, a folder or a hub id; "none"
    turns video off), else the image preset's own (only `tiny` has one: real video models need
    a large GPU, so an operator chooses one)."""
    name = model.video if video_model is None else video_model
    if name is None or name.strip().lower() in NO_VIDEO:
        return None
    if name in VIDEO_PRESETS:
        return VIDEO_PRESETS[name]
    path = Path(name).expanduser()
    source = str(path.resolve()) if path.exists() else name
    base = VIDEO_PRESETS["wan21-flf2v-720p"]
    return replace(base, name=Path(name).name, source=source, licence="see the model card", description=name)


def resolve_preset(model: str) -> Preset:
    """A preset name, a local folder (a saved diffusers pipeline) or a Hugging Face id."""
    if model in PRESETS:
        return PRESETS[model]
    path = Path(model).expanduser()
    if path.exists():
        return replace(_guess_family(path), name=path.name, source=str(path.resolve()))
    return replace(
        PRESETS["sd15-lcm"],
        name=model,
        source=model,
        lora=None,
        scheduler="default",
        steps=25,
        guidance=7.0,
        ip_adapter=None,
        controlnet=None,
        licence="see the model card",
        description="Hugging Face model (SD 1.5 family assumed unless its index says SDXL)",
    )


def _guess_family(path: Path) -> Preset:
    index = path / "model_index.json"
    text = index.read_text() if index.exists() else ""
    for preset in PRESETS.values():  # a transformer family's folder: its real preset's settings
        if preset.family not in ("sd15", "sdxl") and f'"{preset.pipeline}"' in text:
            return replace(preset, licence="local model", segmenter=PRESETS["sd15-lcm"].segmenter)
    if "StableDiffusionXL" in text:
        return replace(
            PRESETS["sdxl-lightning"],
            lora=None,
            scheduler="default",
            steps=25,
            guidance=6.0,
            ip_adapter=None,
            controlnet=None,
            licence="local model",
        )
    if (path / "ip_adapter").exists():  # a tiny-style folder carrying its own adapter and helpers
        return replace(
            PRESETS["tiny"],
            licence="local model",
            ip_adapter=str(path / "ip_adapter"),
            segmenter=str(path / "segmenter" / "model.onnx"),
            controlnet=str(path / "controlnet"),
        )
    return replace(
        PRESETS["tiny"],
        steps=25,
        guidance=7.5,
        scheduler="default",
        ip_adapter=None,
        segmenter=PRESETS["sd15-lcm"].segmenter,
        controlnet=None,
        licence="local model",
    )


#: captioning models for Describe (docs/describe-shorten.md): Florence-2 (MIT), run by
#: transformers' own Florence2ForConditionalGeneration; "tiny" is the offline twin
CAPTION_PRESETS = {
    "florence-2-base": "florence-community/Florence-2-base",  # 0.23 B parameters, CPU-friendly
    "florence-2-large": "florence-community/Florence-2-large",  # 0.77 B
    "tiny-florence-2": "tiny",
}
NO_CAPTION = ("none", "off", "")


def resolve_caption_model(model: Preset, caption_model: str) -> str | None:
    """The captioner source a worker serves for Describe: `--caption-model` (a preset, a folder or
    a hub id; "none" turns Describe off; "auto": the tiny twin with a tiny image model, else
    Florence-2 base)."""
    name = caption_model.strip()
    if name.lower() in NO_CAPTION:
        return None
    if name == "auto":
        name = "tiny-florence-2" if model.source == "tiny" else "florence-2-base"
    if name in CAPTION_PRESETS:
        return CAPTION_PRESETS[name]
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
