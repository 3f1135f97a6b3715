"""Describe's captioner: Florence-2 through transformers, four captions of one image.

The four prompts differ by what the model gives: each is a sampled decode (seeded from the task,
so Retry with a new seed describes anew) at one of Florence-2's detail levels, from a short caption
to a paragraph. A decode that repeats an earlier one is drawn again with another seed.
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from openmj.core.words import DESCRIBE_PROMPTS, caption_to_prompt
from openmj.engines.base import JobControl

#: Florence-2's caption tasks, one per prompt: short, detailed, a paragraph, detailed again
TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>", "<DETAILED_CAPTION>")
MAX_NEW_TOKENS = {"<CAPTION>": 32, "<DETAILED_CAPTION>": 64, "<MORE_DETAILED_CAPTION>": 96}
TOP_P = 0.9
REDRAWS = 4  # tries per prompt to get one not given already


class Captioner:
    def __init__(self, source: str, device: str, dtype: Any = None) -> None:
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        self.source = source
        self.device = device
        self.processor: Any = AutoProcessor.from_pretrained(source)
        kwargs = {"dtype": dtype} if dtype is not None else {}
        self.model: Any = (
            Florence2ForConditionalGeneration.from_pretrained(source, **kwargs).to(device).eval()
        )
        self._lock = threading.Lock()

    def caption(self, image: Image.Image, task: str, seed: int) -> str:
        import torch

        inputs = self.processor(text=task, images=image.convert("RGB"), return_tensors="pt")
        with self._lock, torch.inference_mode():
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)  # generate() samples from the global generator
            try:
                ids = self.model.generate(
                    input_ids=inputs["input_ids"].to(self.device),
                    pixel_values=inputs["pixel_values"].to(self.device, self.model.dtype),
                    max_new_tokens=MAX_NEW_TOKENS[task],
                    do_sample=True,
                    top_p=TOP_P,
                    num_beams=1,
                )
            finally:
                torch.random.set_rng_state(generator_state)
        text = self.processor.batch_decode(ids, skip_special_tokens=False)[0]
        parsed = self.processor.post_process_generation(text, task=task, image_size=image.size)
        return str(parsed.get(task, "")).strip()

    def describe(self, image: Image.Image, seed: int, control: JobControl) -> list[str]:
        """Four distinct captions of `image` (progress reported after each)."""
        out: list[str] = []
        seen: set[str] = set()
        for i, task in enumerate(TASKS[:DESCRIBE_PROMPTS]):
            control.check()
            caption = ""
            for attempt in range(REDRAWS):
                caption = self.caption(image, task, seed + 7919 * i + 104729 * attempt)
                key = caption_to_prompt(caption).lower()
                if key and key not in seen:
                    break
            seen.add(caption_to_prompt(caption).lower())
            out.append(caption)
            control.report((i + 1) / DESCRIBE_PROMPTS)
        return out
