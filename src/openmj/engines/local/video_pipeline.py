"""The video model's pipeline class and loader (kept apart from the runners, which use `Pipelines`)."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline
from transformers import CLIPVisionModel


class FirstLastFramePipeline(WanImageToVideoPipeline):
    """Wan's image-to-video pipeline, able to run a first-last-frame (FLF2V) model without an end
    frame: that model's image context is two images long (start, end), and diffusers forbids
    passing `image_embeds` together with `image`, so a lone start image is encoded as the pair
    (start, start) here — the latent conditioning still marks only the first frame as given."""

    def encode_image(self, image: Any, device: Any = None) -> Any:
        if not isinstance(image, list) and self.transformer.config.pos_embed_seq_len:
            image = [image, image]
        return super().encode_image(image, device)


def load_video_pipeline(source: str, device: str) -> Any:
    # the 14B transformer in bf16 on a GPU (half the memory); the VAE and the image encoder are
    # small next to it and stay in float32, so the frames decode without half-precision error
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    vae = AutoencoderKLWan.from_pretrained(source, subfolder="vae", dtype=torch.float32)
    encoder = CLIPVisionModel.from_pretrained(source, subfolder="image_encoder", dtype=torch.float32)
    pipe = FirstLastFramePipeline.from_pretrained(source, vae=vae, image_encoder=encoder, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
