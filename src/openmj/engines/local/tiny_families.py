"""Build offline "tiny twins" of real hub checkpoints: same pipeline, classes and layout, random weights.

Each twin is what `save_pretrained` writes for the real diffusers pipeline class with the real
component classes (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/ …),
so the real `from_pretrained`, prompt encoding (chat templates included), sampler loop, VAE and the
img2img / inpaint variants (`from_pipe`) all run; only the sizes are small and the pictures noise.

- `tiny-flux2-klein`   ↔ black-forest-labs/FLUX.2-klein-4B  (Flux2KleinPipeline, step-distilled)
- `tiny-z-image`       ↔ Tongyi-MAI/Z-Image-Turbo           (ZImagePipeline)
- `tiny-flux1-schnell` ↔ black-forest-labs/FLUX.1-schnell   (FluxPipeline)

What is kept from the real models, so geometry and defaults behave the same: the VAE scale factor 8
(four VAE stages) and latent channels (32 for FLUX.2, 16 for Z-Image and FLUX.1), the 2×2 latent
patches (image sides must be multiples of 16), RoPE axes split in the real proportions, the Qwen3
text encoder depth (36 layers, so klein's default `text_encoder_out_layers=(9, 18, 27)` and Z-Image's
`hidden_states[-2]` are real layers), the chat template, and the real scheduler settings.
Recipe: docs/models.md (the offline tiny model).
"""

from __future__ import annotations

import json
import os
import shutil
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: twin name -> the diffusers pipeline class named in its model_index.json
TINY_FAMILIES: dict[str, str] = {
    "tiny-flux2-klein": "Flux2KleinPipeline",
    "tiny-z-image": "ZImagePipeline",
    "tiny-flux1-schnell": "FluxPipeline",
}

#: twin name -> the hub checkpoint it mirrors
TINY_TWIN_OF: dict[str, str] = {
    "tiny-flux2-klein": "black-forest-labs/FLUX.2-klein-4B",
    "tiny-z-image": "Tongyi-MAI/Z-Image-Turbo",
    "tiny-flux1-schnell": "black-forest-labs/FLUX.1-schnell",
}

#: image sides must be multiples of this (VAE scale factor 8 × 2×2 latent patches), as in the real ones
TINY_SIDE_MULTIPLE = 16

#: Qwen3-4B's depth: klein stacks hidden states 9, 18 and 27; Z-Image reads the second-to-last
QWEN3_LAYERS = 36
QWEN3_HIDDEN = 16

# A compact form of Qwen3's chat template (system / user / assistant turns, the generation prompt
# and the `enable_thinking` switch: klein renders with enable_thinking=False, i.e. an empty think
# block; Z-Image with enable_thinking=True, i.e. none). Tool calls are left out.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.content is string and '</think>' in message.content %}"
    "{{- '<|im_start|>assistant\\n' + message.content.split('</think>')[-1].lstrip('\\n')"
    " + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)
QWEN3_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN3_PLAIN_ADDED = ["<think>", "</think>"]  # added tokens, not special, as in Qwen3

# the names the real model_index.json files give tokenizers that transformers 5 made aliases of one class
_REAL_TOKENIZER_NAMES: dict[str, dict[str, str]] = {
    "tiny-flux2-klein": {"tokenizer": "Qwen2TokenizerFast"},
    "tiny-z-image": {"tokenizer": "Qwen2Tokenizer"},
    "tiny-flux1-schnell": {"tokenizer": "CLIPTokenizer", "tokenizer_2": "T5TokenizerFast"},
}


def _qwen_tokenizer(work: Path) -> Any:
    """A byte-level BPE Qwen2 tokenizer (one token per byte, no merges) with Qwen3's special tokens
    and chat template, built from vocab.json/merges.txt written under `work`."""
    from tokenizers import AddedToken
    from transformers import Qwen2TokenizerFast

    from openmj.engines.local.tiny import _bytes_to_unicode

    folder = work / "_qwen_tok"
    folder.mkdir(parents=True, exist_ok=True)
    tokens = list(_bytes_to_unicode().values()) + QWEN3_SPECIAL + QWEN3_PLAIN_ADDED
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = Qwen2TokenizerFast.from_pretrained(
        str(folder),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
    )
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN3_SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN3_PLAIN_ADDED])
    tok.chat_template = QWEN3_CHAT_TEMPLATE
    shutil.rmtree(folder, ignore_errors=True)
    return tok


def _qwen3_config(tok: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tok),
        hidden_size=QWEN3_HIDDEN,
        intermediate_size=32,
        num_hidden_layers=QWEN3_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=40960,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )


def _flux_vae(**overrides: Any) -> Any:
    """A 16-channel FLUX.1-style AutoencoderKL (also Z-Image's): four stages, scale factor 8."""
    from diffusers import AutoencoderKL

    kwargs: dict[str, Any] = {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (8, 16, 32, 32),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "latent_channels": 16,
        "sample_size": 1024,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "force_upcast": True,
    }
    kwargs.update(overrides)
    return AutoencoderKL(**kwargs)


def _build_flux2_klein(work: Path) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3ForCausalLM

    tok = _qwen_tokenizer(work)
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(_qwen3_config(tok)).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 32, 32),  # 4 stages: scale factor 8, like the real one
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=32,  # the real FLUX.2 VAE's: 128 channels after 2×2 patchify
        sample_size=1024,
        patch_size=(2, 2),
    )
    torch.manual_seed(0)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=128,  # 32 latent channels × 2×2 patch
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * QWEN3_HIDDEN,  # three stacked Qwen3 hidden states
        timestep_guidance_channels=256,
        mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4),  # real (32, 32, 32, 32); sums to attention_head_dim
        rope_theta=2000,
        guidance_embeds=False,  # klein has no guidance embedding
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        time_shift_type="exponential",
    )
    return Flux2KleinPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        transformer=transformer,
        is_distilled=True,  # FLUX.2-klein-4B is step-distilled: guidance_scale is ignored
    )


def _build_z_image(work: Path) -> Any:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Model

    tok = _qwen_tokenizer(work)
    torch.manual_seed(0)
    text_encoder = Qwen3Model(_qwen3_config(tok)).eval()
    torch.manual_seed(0)
    vae = _flux_vae()
    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=QWEN3_HIDDEN,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[4, 6, 6],  # real [32, 48, 48]; sums to the head dim (32 / 2)
        axes_lens=[1024, 512, 512],
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False
    )
    return ZImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tok, transformer=transformer
    )


def _build_flux1_schnell(work: Path) -> Any:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5TokenizerFast,
    )

    from openmj.engines.local.tiny import write_minimal_tokenizer

    clip_dir = work / "_clip_tok"
    write_minimal_tokenizer(clip_dir)
    clip_tok = CLIPTokenizer.from_pretrained(str(clip_dir), model_max_length=77)
    shutil.rmtree(clip_dir, ignore_errors=True)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    # a Unigram vocabulary built in memory: sentencepiece files cannot be downloaded offline
    t5_tok = T5TokenizerFast(
        vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
        + [(c, -5.0) for c in chars]
        + [("▁" + c, -4.0) for c in chars],
        extra_ids=0,
        model_max_length=512,
    )
    torch.manual_seed(0)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tok),
            hidden_size=32,  # = the transformer's pooled_projection_dim (768 in CLIP-L)
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=clip_tok.bos_token_id,
            eos_token_id=clip_tok.eos_token_id,
            pad_token_id=clip_tok.pad_token_id,
        )
    ).eval()
    torch.manual_seed(0)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tok),
            d_model=32,  # = the transformer's joint_attention_dim (4096 in T5-v1.1-XXL)
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=32,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()
    torch.manual_seed(0)
    vae = _flux_vae()
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels × 2×2 patch
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=False,  # schnell is timestep-distilled without guidance embedding
        axes_dims_rope=(4, 6, 6),  # real (16, 56, 56); sums to attention_head_dim
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=False,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tok,
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        transformer=transformer,
    )


_BUILDERS: dict[str, Callable[[Path], Any]] = {
    "tiny-flux2-klein": _build_flux2_klein,
    "tiny-z-image": _build_z_image,
    "tiny-flux1-schnell": _build_flux1_schnell,
}


def _use_real_tokenizer_names(folder: Path, name: str) -> None:
    """transformers 5 made `Qwen2TokenizerFast` / `T5TokenizerFast` aliases of the one tokenizer class,
    so save_pretrained records the base name; write the names the real checkpoints use (both load)."""
    import transformers

    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    for component, cls_name in _REAL_TOKENIZER_NAMES[name].items():
        if hasattr(transformers, cls_name) and index.get(component, [None])[0] == "transformers":
            index[component] = ["transformers", cls_name]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _tidy_tokenizer_folders(folder: Path) -> None:
    """Lay the tokenizer folders out as the real checkpoints do: the chat template inside
    tokenizer_config.json (transformers 5 writes chat_template.jinja; both load), and without the
    load-time flags (`is_local`, `local_files_only`) transformers 5 copies into the saved config."""
    for config_path in sorted(folder.glob("tokenizer*/tokenizer_config.json")):
        config = json.loads(config_path.read_text())
        for key in ("is_local", "local_files_only"):
            config.pop(key, None)
        jinja = config_path.parent / "chat_template.jinja"
        if jinja.exists():
            config["chat_template"] = jinja.read_text()
            jinja.unlink()
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def build_tiny_family(name: str, target: Path) -> Path:
    """Build and save the tiny twin `name` (a key of TINY_FAMILIES) into `target`; returns it."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown tiny family {name!r}; known: {', '.join(TINY_FAMILIES)}")
    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")  # several processes may race
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    work = tmp / "_work"
    pipe = _BUILDERS[name](work)
    shutil.rmtree(work, ignore_errors=True)
    pipe.save_pretrained(str(tmp))
    _use_real_tokenizer_names(tmp, name)
    _tidy_tokenizer_folders(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_tiny_family(models_dir: Path, name: str) -> Path:
    """The tiny twin folder `models_dir/name`, built on first use."""
    target = models_dir / name
    if not (target / "model_index.json").exists():
        models_dir.mkdir(parents=True, exist_ok=True)
        build_tiny_family(name, target)
    return target
