"""The runners whose result is words: Describe (the captioner) and Shorten (the text encoder).

Shorten measures, with the served model's own text encoder, how far the prompt's embedding moves
when each word is left out (one batch: the prompt and every prompt-without-one-word); the words
that move it most are the important ones. Words past the encoder's window (77 tokens for CLIP)
move it not at all, which is what the model reads of them.
"""

from __future__ import annotations

from typing import Any

from openmj.core import words
from openmj.engines.base import EngineJob, EngineResult, JobControl
from openmj.engines.local.pipelines import Pipelines

MAX_TOKENS = 256  # for encoders with long windows (Qwen3): a prompt is read to here
BATCH = 32  # prompts encoded per forward pass


def describe(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    image = job.images["upload"]
    captions = pipes.captioner().describe(image, job.task.seed, control)
    output = words.describe_output(captions, image.width, image.height)
    return EngineResult(images=[image.convert("RGB")], seeds=[job.task.seed], output=output)


def shorten(pipes: Pipelines, job: EngineJob, control: JobControl) -> EngineResult:
    text = job.task.spec.get("prompt", {}).get("text", "")
    units = words.shorten_words(text)
    effects = word_effects(pipes.pipe, units, control)
    written = job.task.spec.get("options", {}).get("written") or job.task.prompt
    return EngineResult(images=[], seeds=[], output=words.shorten_output(written, text, effects))


def word_effects(pipe: Any, units: list[str], control: JobControl) -> list[float]:
    """1 − cosine similarity between the prompt's embedding and the embedding without each word."""
    import torch

    texts = [" ".join(units)] + [" ".join(units[:i] + units[i + 1 :]) for i in range(len(units))]
    vectors = []
    for start in range(0, len(texts), BATCH):
        control.check()
        vectors.append(_embed(pipe, texts[start : start + BATCH]))
        control.report(min(1.0, (start + BATCH) / len(texts)))
    emb = torch.nn.functional.normalize(torch.cat(vectors).float(), dim=-1)
    return [float(1.0 - torch.dot(emb[0], emb[i + 1])) for i in range(len(units))]


def _embed(pipe: Any, texts: list[str]) -> Any:
    """Masked mean of the text encoder's last hidden states (CLIP, T5 or Qwen3 alike)."""
    import torch

    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    limit = min(int(getattr(tokenizer, "model_max_length", MAX_TOKENS) or MAX_TOKENS), MAX_TOKENS)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
    device = next(encoder.parameters()).device
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    with torch.inference_mode():
        out = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    hidden = out.hidden_states[-1] if getattr(out, "hidden_states", None) else out.last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
