"""Build the `tiny` model offline: real diffusers pipeline classes with small random weights.

The pictures are meaningless coloured noise, but every code path (tokenizer, text encoder, UNet,
scheduler, VAE, from_pretrained, img2img/inpaint via from_pipe, IP-Adapter) is the real one, so
tests and offline trials exercise what production runs. Recipe: docs/models.md (the offline tiny model).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

TINY_CROSS_DIM = 32


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def write_minimal_tokenizer(folder: Path) -> None:
    """A 514-token CLIP vocabulary (one token per byte): enough for real tokenisation offline."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


# The UNet's and the VAE's widths. "narrow" is the tiny model of the suite and `--model tiny`:
# attention only at the lowest resolution (¼ side), the layout of SD 1.5 at a fraction of the work,
# so the suite's hundreds of real-pipeline jobs stay cheap. "wide" is the tiny model as it was
# when bench/bench_engine.py's overhead target was set (about 3× the work per job), which that
# benchmark keeps using so its ratios stay comparable from run to run.
WIDTHS: dict[str, dict[str, Any]] = {
    "narrow": {
        "unet": {
            "block_out_channels": (16, 32, 32),
            "down_block_types": ("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
            "attention_head_dim": 2,
            "norm_num_groups": 8,
        },
        "vae": {"block_out_channels": (4, 8, 16, 16), "norm_num_groups": 4},
    },
    "wide": {
        "unet": {
            "block_out_channels": (32, 64),
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "attention_head_dim": 8,
            "norm_num_groups": 32,
        },
        "vae": {"block_out_channels": (8, 16, 32, 32), "norm_num_groups": 8},
    },
}


def build_tiny(target: Path, widths: str = "narrow") -> Path:
    """Build and save the tiny pipeline (+ a tiny IP-Adapter) into `target`; returns it."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")  # several processes may race
    shutil.rmtree(tmp, ignore_errors=True)
    tok_dir = tmp / "_tok"
    write_minimal_tokenizer(tok_dir)
    tok = CLIPTokenizer.from_pretrained(str(tok_dir), model_max_length=77)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,  # = 512 px defaults, like real SD 1.5
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        cross_attention_dim=TINY_CROSS_DIM,
        **WIDTHS[widths]["unet"],
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        sample_size=64,  # 4 blocks in either width: scale factor 8, like real SD
        **WIDTHS[widths]["vae"],
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    torch.manual_seed(0)
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=TINY_CROSS_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=TINY_CROSS_DIM,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    sched = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tok,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(tmp))
    shutil.rmtree(tok_dir, ignore_errors=True)
    _build_tiny_ip_adapter(unet, tmp / "ip_adapter")
    _build_tiny_controlnet(unet, tmp / "controlnet")
    build_tiny_segmenter(tmp / "segmenter" / "model.onnx")
    (tmp / "WIDTHS").write_text(widths + "\n")  # which of WIDTHS this is, for the benchmark
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_tiny_ip_adapter(unet: object, folder: Path) -> None:
    """A random IP-Adapter matching the tiny UNet, loaded later through the real load_ip_adapter."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor
    from diffusers.models.embeddings import ImageProjection
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = unet.config  # type: ignore[attr-defined]
    state: dict[str, object] = {}
    k = 1
    for name in unet.attn_processors:  # type: ignore[attr-defined]
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = cfg.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(cfg.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = cfg.block_out_channels[int(name[len("down_blocks.")])]
        proc = IPAdapterAttnProcessor(
            hidden_size=hidden, cross_attention_dim=cfg.cross_attention_dim
        ).state_dict()
        state[f"ip_adapter.{k}.to_k_ip.weight"] = proc["to_k_ip.0.weight"]
        state[f"ip_adapter.{k}.to_v_ip.weight"] = proc["to_v_ip.0.weight"]
        k += 2
    proj = ImageProjection(
        cross_attention_dim=cfg.cross_attention_dim, image_embed_dim=32, num_image_text_embeds=4
    ).state_dict()
    state |= {
        "image_proj.proj.weight": proj["image_embeds.weight"],
        "image_proj.proj.bias": proj["image_embeds.bias"],
        "image_proj.norm.weight": proj["norm.weight"],
        "image_proj.norm.bias": proj["norm.bias"],
    }
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(models / "ip-adapter_tiny.safetensors"))  # type: ignore[attr-defined]
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    ).save_pretrained(str(models / "image_encoder"))


def ensure_tiny(models_dir: Path, widths: str = "narrow") -> Path:
    """The tiny model folder under `models_dir`, built on first use (`widths`: see WIDTHS)."""
    target = models_dir / "tiny"
    if not (target / "model_index.json").exists():
        models_dir.mkdir(parents=True, exist_ok=True)
        build_tiny(target, widths)
    return target


def _build_tiny_controlnet(unet: object, folder: Path) -> None:
    """A ControlNet copied from the tiny UNet (diffusers' own from_unet), for retexture."""
    from diffusers import ControlNetModel

    # four stages: the condition image is downsampled 8×, like the VAE latents
    ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 32)).save_pretrained(
        str(folder)
    )


SEGMENTER_SIDE = 320
# ImageNet normalisation, as real salient-object models (U²-Net, BiRefNet) expect
SEG_MEAN = (0.485, 0.456, 0.406)
SEG_STD = (0.229, 0.224, 0.225)


def build_tiny_segmenter(path: Path, sharpness: float = 20.0) -> None:
    """A one-layer ONNX "segmenter" that calls bright pixels foreground.

    Not random: a 1×1 convolution computes sharpness × (mean brightness − 0.5) from the normalised
    input and a sigmoid turns it into a matte, so tests can check real transparency (a white
    square on black keeps the square and clears the rest) through the real ONNX code path.
    """
    import onnx
    from onnx import TensorProto, helper

    weights = [sharpness * sd / 3 for sd in SEG_STD]
    bias = sharpness * (sum(SEG_MEAN) / 3 - 0.5)
    side = SEGMENTER_SIDE
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["logits"], kernel_shape=[1, 1]),
            helper.make_node("Sigmoid", ["logits"], ["output"]),
        ],
        "tiny_segmenter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, side, side])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], weights),
            helper.make_tensor("b", TensorProto.FLOAT, [1], [bias]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}")  # a reader never sees a half-written file
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
