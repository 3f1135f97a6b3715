"""Translation, Describe and Shorten: latency per call, openmj's path ÷ the bare model call.

Same work on both sides, tiny offline twins (engines/local/tiny_text.py, the tiny SD 1.5 text
encoder), CPU, one call at a time, the two sides alternating (bare, openmj, bare, …) so load from
elsewhere falls on both alike:

- translation: bare = `MarianMTModel.generate` on the prompt's two runs of words; openmj =
  `translate_prompt` (Lingua detection, the prompt cut into pieces, each piece generated, the
  prompt put back together) on `一只在雪地里的红狐狸 --ar 16:9 --no 人`.
- describe: bare = four `Florence2ForConditionalGeneration.generate` calls (the four detail
  levels, sampled); openmj = `Captioner.describe` + `describe_output` (redraws of repeats, clean-up,
  `--ar`).
- shorten: bare = one text-encoder forward of the prompt and its 29 one-word-less variants; openmj
  = `word_effects` + `shorten_output` (batches, cancellation checks, ranking, five prompts).

Run:

    HF_HUB_OFFLINE=1 python bench/bench_words.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "一只在雪地里的红狐狸 --ar 16:9 --no 人"
LONG = (
    "a breathtaking cinematic photograph of a majestic red fox standing proudly in deep fresh snow, "
    "soft golden morning light, extremely detailed fur, shallow depth of field, award winning"
)
#: the real models these twins stand for, on paper (their model cards)
REAL = {
    "translation": "Helsinki-NLP/opus-mt-zh-en: Marian, ~77 M parameters, ~300 MB fp32",
    "describe": "florence-community/Florence-2-base: 0.23 B parameters (large: 0.77 B), ~0.5 GB fp16",
    "shorten": "the served model's own text encoder (SD 1.5: CLIP ViT-L/14 text, 123 M parameters)",
}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(bare: Callable[[], Any], ours: Callable[[], Any], runs: int) -> dict[str, float]:
    bare(), ours()  # warm-up: first calls pay lazy initialisation
    b, o = [], []
    for _ in range(runs):
        b.append(timed(bare))
        o.append(timed(ours))
    mb, mo = statistics.median(b), statistics.median(o)
    return {"bare_ms": round(mb * 1000, 2), "openmj_ms": round(mo * 1000, 2), "ratio": round(mo / mb, 3)}


def run(runs: int = 7) -> dict[str, Any]:
    import torch
    from PIL import Image

    from openmj.core import words
    from openmj.core.prompt.translation import translate_prompt
    from openmj.engines.base import JobControl
    from openmj.engines.local.captioner import TASKS, Captioner
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import PRESETS
    from openmj.engines.local.words import _embed, word_effects
    from openmj.language.models import PRESETS as TRANSLATORS
    from openmj.language.translator import LocalTranslator

    torch.set_num_threads(1)
    models = Path(tempfile.mkdtemp(prefix="openmj-bench-words-"))
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "runs": runs}

    translator = LocalTranslator(TRANSLATORS["tiny"], models)
    translator.load()
    marian = translator._models["zh"]
    texts = ["一只在雪地里的红狐狸", "人"]  # the prompt's words: its text and its --no item

    def bare_translate() -> None:
        with torch.inference_mode():
            for text in texts:
                batch = marian.tokenizer([text], return_tensors="pt")
                n = int(batch["input_ids"].shape[1])
                marian.model.generate(**batch, max_new_tokens=2 * n + 16)

    out["translation"] = alternate(bare_translate, lambda: translate_prompt(PROMPT, translator, "all"), runs)

    engine = LocalEngine(PRESETS["tiny"], models, "cpu", caption_source="tiny")
    engine.load()
    captioner: Captioner = engine.pipelines.captioner()
    image = Image.new("RGB", (96, 64), "orange")

    def bare_describe() -> None:
        for i, task in enumerate(TASKS):
            captioner.caption(image, task, 1 + i)

    def our_describe() -> None:
        words.describe_output(captioner.describe(image, 1, JobControl()), *image.size)

    out["describe"] = alternate(bare_describe, our_describe, runs)

    pipe = engine.pipelines.pipe
    units = LONG.split()
    variants = [LONG] + [" ".join(units[:i] + units[i + 1 :]) for i in range(len(units))]

    def our_shorten() -> None:
        effects = word_effects(pipe, units, JobControl())
        words.shorten_output(f"{LONG} --ar 16:9", LONG, effects)

    out["shorten"] = alternate(lambda: _embed(pipe, variants), our_shorten, runs)
    out["real_models"] = REAL
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    print(json.dumps(run(args.runs), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
