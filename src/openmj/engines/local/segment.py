"""Background removal with an ONNX salient-object model (BiRefNet, U²-Net and alike).

These models take a normalised RGB square and return a foreground matte; the matte, resized back,
becomes the alpha channel of an RGBA PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # ImageNet normalisation, as these models expect
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DEFAULT_SIDE = 1024  # BiRefNet's input size when the model does not fix one


class Segmenter:
    def __init__(self, session: Any) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.side = shape[-1] if isinstance(shape[-1], int) else DEFAULT_SIDE

    @classmethod
    def load(cls, ref: str, prefer_cuda: bool = False) -> Segmenter:
        import onnxruntime as ort

        path = Path(ref)
        if not path.exists() and ":" in ref:  # "hub-id:file/in/repo.onnx"
            from huggingface_hub import hf_hub_download

            repo, filename = ref.split(":", 1)
            path = Path(hf_hub_download(repo, filename))
        providers = ["CPUExecutionProvider"]
        if prefer_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        return cls(ort.InferenceSession(str(path), providers=providers))

    def matte(self, image: Image.Image) -> Image.Image:
        """Foreground probability 0–255, at the image's own size."""
        rgb = image.convert("RGB").resize((self.side, self.side), Image.Resampling.BILINEAR)
        x = (np.asarray(rgb, dtype=np.float32) / 255.0 - MEAN) / STD
        out = self.session.run(None, {self.input_name: x.transpose(2, 0, 1)[None]})[-1]
        m = np.asarray(out, dtype=np.float32).reshape(out.shape[-2:])
        if m.min() < 0 or m.max() > 1:  # logits, not probabilities
            m = 1 / (1 + np.exp(-m))
        alpha = Image.fromarray((m * 255).round().astype(np.uint8), "L")
        return alpha.resize(image.size, Image.Resampling.BILINEAR)

    def cut_out(self, image: Image.Image) -> Image.Image:
        rgba = image.convert("RGBA")
        rgba.putalpha(self.matte(image))
        return rgba
