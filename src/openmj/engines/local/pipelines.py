"""The local model's pipelines: loading, `from_pipe` views, ControlNet and the segmenter.

torch and diffusers are imported inside the methods that load, so importing this module costs
nothing (the API process imports `LocalEngine`, which imports this, without loading anything).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from openmj.core.families import family as family_traits
from openmj.engines.base import EngineLoadError, ModelProfile
from openmj.engines.local.presets import PRESETS, Preset, VideoPreset
from openmj.engines.local.tiny import build_tiny_segmenter, ensure_tiny

log = logging.getLogger("openmj.engine")

OFFLINE_HINT = "For an offline trial use `--model tiny` (random weights, built locally)."

#: the diffusers classes of each transformer family: text-to-image, image-to-image, inpaint.
#: FLUX.2 klein has no image-to-image class: its inpaint pipeline with an all-white mask is one.
FAMILY_PIPELINES: dict[str, tuple[str, str, str]] = {
    "flux2-klein": ("Flux2KleinPipeline", "Flux2KleinInpaintPipeline", "Flux2KleinInpaintPipeline"),
    "z-image": ("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline"),
    "flux1": ("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline"),
}
#: a hub id's pipeline class → the family it belongs to (`--model` given a hub id or a folder)
CLASS_FAMILIES = {"StableDiffusionXLPipeline": "sdxl", "StableDiffusionPipeline": "sd15"} | {
    classes[0]: name for name, classes in FAMILY_PIPELINES.items()
}


class Pipelines:
    """The loaded model: the text-to-image pipeline and every view derived from its weights
    (img2img and inpaint with `from_pipe`, the ControlNet pipeline), plus the segmenter. Runner
    modules (actions, editing, references) take this object; only it touches the loaders."""

    def __init__(
        self,
        preset: Preset,
        models_dir: Path,
        device: str | None = None,
        video: VideoPreset | None = None,
        *,
        cpu_offload: bool = False,
        compile: bool = False,
        caption_source: str | None = None,
    ) -> None:
        self.preset = preset
        self.caption_source = caption_source  # Describe's captioner (None: no Describe)
        self._captioner: Any = None
        self.cpu_offload = cpu_offload
        self.compile = compile
        self.video_preset = video
        self._video: Any = None
        self.models_dir = models_dir
        self.requested_device = device
        self.device = "cpu"
        self.dtype: Any = None
        self.pipe: Any = None
        self.source_path = ""
        self._variants: dict[str, Any] = {}
        self._segmenter: Any = None
        self._controlnet: Any = None
        self.profile = ModelProfile(
            name=preset.name,
            family=preset.family,
            native_size=preset.native_size,
            steps=preset.steps,
            guidance=preset.guidance,
            licence=preset.licence,
            has_ip_adapter=preset.ip_adapter is not None,
            size_multiple=family_traits(preset.family).size_multiple,
        )

    @property
    def family(self) -> str:
        return self.preset.family

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise EngineLoadError(
                f"The local engine needs the [local] extra (torch, diffusers): {exc}. "
                "Install it with: pip install -e '.[local]'  (or run the API only with --no-worker)"
            ) from exc
        import torch

        self.device = self._pick_device(torch)
        self.dtype = self._dtype(torch)
        if self.device == "cpu":
            torch.set_num_threads(max(1, os.cpu_count() or 1))
        source = self._source()
        self.source_path = source
        try:
            self.pipe = self._load_pipeline(source)
        except Exception as exc:  # any loader failure becomes one clear message, not a traceback
            raise EngineLoadError(
                f"Cannot load model '{self.preset.name}' from '{source}': {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}\n"
                f"Check the name, your network or the Hugging Face cache (HF_HOME). {OFFLINE_HINT}"
            ) from exc
        log.info("model %s loaded from %s on %s", self.preset.name, source, self.device)

    def _dtype(self, torch: Any) -> Any:
        """bf16 on CUDA for the transformer families (their activations overflow fp16), fp16 for
        SD's UNets, fp32 on CPU."""
        if not self.device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if self.family in FAMILY_PIPELINES else torch.float16

    def _adopt_family(self, family: str, native_size: int) -> None:
        multiple = family_traits(family).size_multiple
        self.preset = replace(self.preset, family=family, native_size=native_size)
        if family in FAMILY_PIPELINES:  # SD's helpers and samplers do not apply to a transformer
            self.preset = replace(self.preset, scheduler="native", ip_adapter=None, controlnet=None)
        self.profile = replace(self.profile, family=family, native_size=native_size, size_multiple=multiple)

    def adopt(self, pipe: Any) -> None:
        """Install an already built pipeline as the loaded model (what `load` does after
        `from_pretrained`): the scheduler, no progress bar, the device (or CPU offload), compile.
        bench/gpu.py builds full-size random-weight pipelines in memory and times them this way."""
        import torch

        if self.dtype is None:
            self.device = self._pick_device(torch)
            self.dtype = self._dtype(torch)
        self.pipe = self._place(pipe)

    def _pick_device(self, torch: Any) -> str:
        if self.requested_device:
            return self.requested_device
        if self.preset.device == "cpu":
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"

    def _source(self) -> str:
        if self.preset.source == "tiny":
            if self.family in FAMILY_PIPELINES:
                from openmj.engines.local.tiny_families import ensure_tiny_family

                return str(ensure_tiny_family(self.models_dir, self.preset.name))
            return str(ensure_tiny(self.models_dir))
        return self.preset.source

    def _load_pipeline(self, source: str) -> Any:
        import diffusers
        from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline, StableDiffusionXLPipeline

        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if self.family in FAMILY_PIPELINES:
            cls = getattr(diffusers, FAMILY_PIPELINES[self.family][0])
            return self._place(cls.from_pretrained(source, **kwargs))
        if self.preset.name in PRESETS or Path(source).exists():
            cls = StableDiffusionXLPipeline if self.preset.family == "sdxl" else StableDiffusionPipeline
            if cls is StableDiffusionPipeline:
                kwargs |= {"safety_checker": None, "requires_safety_checker": False}
            pipe = cls.from_pretrained(source, **kwargs)
        else:  # a hub id: its model_index.json says which family it is
            pipe = AutoPipelineForText2Image.from_pretrained(source, **kwargs)
            found = CLASS_FAMILIES.get(type(pipe).__name__)
            if found is None:
                supported = ", ".join(CLASS_FAMILIES)
                raise ValueError(f"{type(pipe).__name__} is not supported (these are: {supported})")
            if found != self.preset.family:
                self._adopt_family(found, 512 if found == "sd15" else 1024)
            if found in FAMILY_PIPELINES:
                return self._place(pipe)
        if self.preset.lora:
            lora_kwargs = (
                {"weight_name": self.preset.lora_weight_name} if self.preset.lora_weight_name else {}
            )
            pipe.load_lora_weights(self.preset.lora, **lora_kwargs)
            pipe.fuse_lora()
        return self._place(pipe)

    def _place(self, pipe: Any) -> Any:
        """The sampler the preset names, no progress bar, on the device (or offloaded), compiled."""
        if self.preset.scheduler != "native":
            pipe.scheduler = self._scheduler(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        if self.cpu_offload and self.device.startswith("cuda"):
            # a GPU too small for the whole model: each component moves in only while it runs
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe = pipe.to(self.device)
        if self.compile:
            denoiser = getattr(pipe, "transformer", None) or pipe.unet
            denoiser.compile()  # torch.compile in place; the first job pays the compile time
        return pipe

    def _scheduler(self, config: Any) -> Any:
        from diffusers import EulerDiscreteScheduler, LCMScheduler

        kind = self.preset.scheduler
        if kind == "lcm":
            return LCMScheduler.from_config(config)
        if kind == "euler":
            return EulerDiscreteScheduler.from_config(config)
        if kind == "euler_trailing":  # SDXL-Lightning's model card: Euler with trailing timesteps
            return EulerDiscreteScheduler.from_config(config, timestep_spacing="trailing")
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler.from_config(config)

    def variant(self, kind: str) -> Any:
        """The text-to-image pipeline or an img2img / inpaint view of the same weights."""
        if kind == "txt2img":
            return self.pipe
        if kind not in self._variants:
            import diffusers
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            factory: Any
            if self.family in FAMILY_PIPELINES:
                _, img2img, inpaint = FAMILY_PIPELINES[self.family]
                factory = getattr(diffusers, {"img2img": img2img, "inpaint": inpaint}[kind])
            else:
                factory = {"img2img": AutoPipelineForImage2Image, "inpaint": AutoPipelineForInpainting}[kind]
            self._variants[kind] = factory.from_pipe(self.pipe)
            self._variants[kind].set_progress_bar_config(disable=True)
        return self._variants[kind]

    def reset_variants(self) -> None:
        """Forget derived pipelines (after the base pipeline's components changed)."""
        self._variants.clear()

    def _helper_path(self, ref: str, sub: str) -> str:
        return str(Path(self.source_path) / sub) if ref == "tiny" else ref

    def controlnet_pipeline(self) -> Any:
        """Img2img guided by an edge ControlNet (retexture), sharing the base weights."""
        if self.preset.controlnet is None:
            return None
        if self._controlnet is None:
            from diffusers import (
                ControlNetModel,
                StableDiffusionControlNetImg2ImgPipeline,
                StableDiffusionXLControlNetImg2ImgPipeline,
            )

            net = ControlNetModel.from_pretrained(
                self._helper_path(self.preset.controlnet, "controlnet"), dtype=self.dtype
            ).to(self.device)
            cls = (
                StableDiffusionXLControlNetImg2ImgPipeline
                if self.preset.family == "sdxl"
                else StableDiffusionControlNetImg2ImgPipeline
            )
            self._controlnet = cls.from_pipe(self.pipe, controlnet=net)
            self._controlnet.set_progress_bar_config(disable=True)
        return self._controlnet

    def video(self) -> Any:
        """The image-to-video pipeline, loaded on the first video job: a worker that never runs
        one never spends the memory."""
        if self._video is None:
            vp = self.video_preset
            if vp is None:
                raise EngineLoadError(f"The model '{self.preset.name}' has no video model (--video-model)")
            from openmj.engines.local.video_pipeline import load_video_pipeline

            if vp.source == "tiny":
                from openmj.engines.local.tiny_video import ensure_tiny_video

                source = str(ensure_tiny_video(self.models_dir))
            else:
                source = vp.source
            try:
                self._video = load_video_pipeline(source, self.device)
            except Exception as exc:
                raise EngineLoadError(
                    f"Cannot load video model '{vp.name}' from '{source}': {type(exc).__name__}: {exc}"
                ) from exc
            log.info("video model %s loaded from %s on %s", vp.name, source, self.device)
        return self._video

    def captioner(self) -> Any:
        """Describe's captioner (Florence-2), loaded on first use."""
        if self._captioner is None:
            from openmj.engines.local.captioner import Captioner

            source = self.caption_source
            if source is None:
                raise EngineLoadError(f"The model '{self.preset.name}' has no captioning model configured")
            if source == "tiny":
                from openmj.engines.local.tiny_text import ensure_tiny_captioner

                source = str(ensure_tiny_captioner(self.models_dir))
            try:
                self._captioner = Captioner(source, self.device)
            except Exception as exc:
                raise EngineLoadError(
                    f"Cannot load the captioning model from '{source}': {type(exc).__name__}: {exc}"
                ) from exc
            log.info("captioning model loaded from %s on %s", source, self.device)
        return self._captioner

    def segmenter(self) -> Any:
        """The background-removal model (ONNX), loaded on first use."""
        if self._segmenter is None:
            from openmj.engines.local.segment import Segmenter

            ref = self.preset.segmenter
            if ref is None:
                raise EngineLoadError(f"The model '{self.preset.name}' has no segmentation model configured")
            path = self._helper_path(ref, "segmenter/model.onnx")
            if ref == "tiny" and not Path(path).exists():  # a tiny twin's folder: build the helper too
                build_tiny_segmenter(Path(path))
            self._segmenter = Segmenter.load(path, prefer_cuda=self.device.startswith("cuda"))
        return self._segmenter
