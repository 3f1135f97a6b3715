"""Build the `tiny-video` model offline: a real `WanImageToVideoPipeline` with small random weights.

The same classes and folder layout as `Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers` (UMT5 text encoder,
CLIP image encoder, Wan VAE, a first-last-frame Wan transformer, flow-matching scheduler), so
`from_pretrained`, the sampler loop, progress and cancel are the real ones. Recipe:
docs/models.md (the offline tiny model).
"""

from __future__ import annotations

import os
import shutil
import string
from pathlib import Path

#: CLIP tokens the tiny image encoder yields per image (a 32 px image in 16 px patches + the class
#: token); a first-last-frame transformer reads two images, so its position table is twice this
TINY_IMAGE_TOKENS = 5


def build_tiny_video(target: Path) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        T5Tokenizer,
        UMT5Config,
        UMT5EncoderModel,
    )

    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")  # several processes may race
    shutil.rmtree(tmp, ignore_errors=True)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    # a Unigram vocabulary built in memory: sentencepiece files cannot be downloaded offline
    tokenizer = T5Tokenizer(
        vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
        + [(c, -5.0) for c in chars]
        + [("▁" + c, -4.0) for c in chars],
        extra_ids=0,
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # the real models' value: enough positions for 720p latents
        image_dim=4,
        pos_embed_seq_len=2 * TINY_IMAGE_TOKENS,  # FLF2V: the start and end images' tokens
    )
    torch.manual_seed(0)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=8,
            patch_size=16,
        )
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    pipe.save_pretrained(str(tmp))
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_tiny_video(models_dir: Path) -> Path:
    target = models_dir / "tiny-video"
    if not (target / "model_index.json").exists():
        models_dir.mkdir(parents=True, exist_ok=True)
        build_tiny_video(target)
    return target
