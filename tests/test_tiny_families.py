"""The offline tiny twins of FLUX.2-klein-4B, Z-Image-Turbo and FLUX.1-schnell: the real pipeline and
component classes in the real layout, loaded through the real `from_pretrained`, with text-to-image,
seeded determinism, img2img / inpaint (`from_pipe`) and klein's multi-reference input."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is never asked, even for a stray look-up

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from openmj.engines.local.tiny_families import (  # noqa: E402
    TINY_FAMILIES,
    TINY_SIDE_MULTIPLE,
    build_tiny_family,
    ensure_tiny_family,
)

pytestmark = pytest.mark.slow  # torch and real pipelines

SIDE = 128
STEPS = 2
PROMPTS = ["a red fox in fresh snow", "a blue car under neon lights"]
SEEDS = (1, 2)
MAX_BYTES = 4 * 1024 * 1024  # each twin: a few MB at most

# what each real checkpoint's model_index.json names
COMPONENTS: dict[str, dict[str, list[str]]] = {
    "tiny-flux2-klein": {
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen3ForCausalLM"],
        "tokenizer": ["transformers", "Qwen2TokenizerFast"],
        "transformer": ["diffusers", "Flux2Transformer2DModel"],
        "vae": ["diffusers", "AutoencoderKLFlux2"],
    },
    "tiny-z-image": {
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen3Model"],
        "tokenizer": ["transformers", "Qwen2Tokenizer"],
        "transformer": ["diffusers", "ZImageTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
    "tiny-flux1-schnell": {
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "text_encoder_2": ["transformers", "T5EncoderModel"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
}

# the call settings each real model is used with (distilled klein ignores guidance; Z-Image-Turbo
# and schnell run without CFG at guidance 0)
CALL_KWARGS: dict[str, dict[str, Any]] = {
    "tiny-flux2-klein": {"guidance_scale": 1.0},
    "tiny-z-image": {"guidance_scale": 0.0},
    "tiny-flux1-schnell": {"guidance_scale": 0.0, "max_sequence_length": 256},
}

# img2img / inpaint classes reached with from_pipe (klein has no img2img class: references instead)
VARIANTS: dict[str, list[str]] = {
    "tiny-flux2-klein": ["Flux2KleinInpaintPipeline"],
    "tiny-z-image": ["ZImageImg2ImgPipeline", "ZImageInpaintPipeline"],
    "tiny-flux1-schnell": ["FluxImg2ImgPipeline", "FluxInpaintPipeline"],
}


@pytest.fixture(scope="module")
def twins_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("tiny-families")
    for name in TINY_FAMILIES:
        ensure_tiny_family(models, name)
    return models


@pytest.fixture(scope="module")
def pipes(twins_dir: Path) -> dict[str, Any]:
    """Each twin loaded once through the real from_pretrained of the class its model_index names."""
    import diffusers

    loaded = {}
    for name, cls_name in TINY_FAMILIES.items():
        pipe = getattr(diffusers, cls_name).from_pretrained(str(twins_dir / name))
        pipe.set_progress_bar_config(disable=True)
        loaded[name] = pipe
    return loaded


def generators() -> list[Any]:
    import torch

    return [torch.Generator("cpu").manual_seed(s) for s in SEEDS]


def picture(side: int = SIDE) -> Image.Image:
    """A red→blue gradient: a start / reference picture with some structure."""
    x = np.linspace(0, 255, side, dtype=np.float32)
    rgb = np.stack([255 - x, np.full_like(x, 60), x], axis=-1)
    return Image.fromarray(np.repeat(rgb[None], side, axis=0).astype(np.uint8))


def mask(side: int = SIDE) -> Image.Image:
    m = Image.new("L", (side, side), 0)
    m.paste(255, (side // 4, side // 4, 3 * side // 4, 3 * side // 4))
    return m


def check_pictures(images: list[Image.Image], count: int = len(PROMPTS)) -> None:
    assert len(images) == count
    for im in images:
        assert isinstance(im, Image.Image)
        assert im.mode == "RGB"
        assert im.size == (SIDE, SIDE)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_module_import_is_cheap() -> None:
    probe = "import sys, openmj.engines.local.tiny_families; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_family_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny family"):
        build_tiny_family("tiny-nope", tmp_path / "tiny-nope")


@pytest.mark.parametrize("name", list(TINY_FAMILIES))
def test_layout_names_real_classes(twins_dir: Path, name: str) -> None:
    folder = twins_dir / name
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == TINY_FAMILIES[name]
    for component, spec in COMPONENTS[name].items():
        assert index[component] == spec, component
        assert (folder / component).is_dir(), component
    assert not list(twins_dir.glob(f"{name}.building-*"))  # the temp sibling was moved into place
    assert folder_bytes(folder) < MAX_BYTES
    if name == "tiny-flux2-klein":
        assert index["is_distilled"] is True
    if name != "tiny-flux1-schnell":  # the Qwen3 tokenizers: the chat template in tokenizer_config.json
        tok = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
        assert "<|im_start|>" in tok["chat_template"]
    # built on first use only: a second ensure keeps the folder as it is
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert ensure_tiny_family(twins_dir, name) == folder
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp


def test_scheduler_settings(twins_dir: Path) -> None:
    def sched(name: str) -> dict[str, Any]:
        return json.loads((twins_dir / name / "scheduler" / "scheduler_config.json").read_text())

    schnell, turbo, klein = sched("tiny-flux1-schnell"), sched("tiny-z-image"), sched("tiny-flux2-klein")
    assert (schnell["shift"], schnell["use_dynamic_shifting"]) == (1.0, False)
    assert (turbo["shift"], turbo["use_dynamic_shifting"]) == (3.0, False)
    assert klein["use_dynamic_shifting"] is True


@pytest.mark.parametrize("name", list(TINY_FAMILIES))
def test_text_to_image_is_seeded(pipes: dict[str, Any], name: str) -> None:
    pipe = pipes[name]
    assert pipe.vae_scale_factor * 2 == TINY_SIDE_MULTIPLE

    def run() -> list[Image.Image]:
        return pipe(
            prompt=list(PROMPTS),  # a copy: ZImagePipeline rewrites the list it is given in place
            height=SIDE,
            width=SIDE,
            num_inference_steps=STEPS,
            generator=generators(),
            **CALL_KWARGS[name],
        ).images

    first, second = run(), run()
    check_pictures(first)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))


@pytest.mark.parametrize("name", list(TINY_FAMILIES))
def test_img2img_and_inpaint_variants(pipes: dict[str, Any], name: str) -> None:
    import diffusers

    for cls_name in VARIANTS[name]:
        variant = getattr(diffusers, cls_name).from_pipe(pipes[name])
        variant.set_progress_bar_config(disable=True)
        kwargs: dict[str, Any] = {"image": picture(), "strength": 0.5}
        if "Inpaint" in cls_name:
            kwargs["mask_image"] = mask()
        images = variant(
            prompt=list(PROMPTS),
            height=SIDE,
            width=SIDE,
            num_inference_steps=STEPS,
            generator=generators(),
            **kwargs,
            **CALL_KWARGS[name],
        ).images
        check_pictures(images)


def test_klein_inpaint_from_pretrained(twins_dir: Path) -> None:
    from diffusers import Flux2KleinInpaintPipeline

    pipe = Flux2KleinInpaintPipeline.from_pretrained(str(twins_dir / "tiny-flux2-klein"))
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        prompt=PROMPTS[0],
        image=picture(),
        mask_image=mask(),
        image_reference=picture(64),
        strength=0.5,
        num_inference_steps=STEPS,
        generator=generators()[0],
        **CALL_KWARGS["tiny-flux2-klein"],
    ).images
    check_pictures(images, count=1)


def test_klein_multi_reference(pipes: dict[str, Any]) -> None:
    pipe = pipes["tiny-flux2-klein"]
    references = [picture(), picture(64).rotate(90)]  # the pipeline wants sides of at least 64 px
    images = pipe(
        prompt=list(PROMPTS),
        image=references,
        height=SIDE,
        width=SIDE,
        num_inference_steps=STEPS,
        generator=generators(),
        **CALL_KWARGS["tiny-flux2-klein"],
    ).images
    check_pictures(images)
    plain = pipe(
        prompt=list(PROMPTS),
        height=SIDE,
        width=SIDE,
        num_inference_steps=STEPS,
        generator=generators(),
        **CALL_KWARGS["tiny-flux2-klein"],
    ).images
    assert not np.array_equal(np.asarray(images[0]), np.asarray(plain[0]))  # the references count
