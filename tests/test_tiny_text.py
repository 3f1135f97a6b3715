"""The offline tiny twins of opus-mt-zh-en (Marian) and Florence-2-base: the real tokenizer, processor
and model classes in the real file layout, loaded through the real `from_pretrained`, translating and
captioning (word salad, but ordinary words), seeded, and built the same way every time."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is never asked, even for a stray look-up

import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from openmj.engines.local.tiny_text import (  # noqa: E402
    TINY_CAPTIONER,
    TINY_CAPTIONER_IMAGE_SIDE,
    TINY_TRANSLATOR,
    build_atomically,
    build_tiny_captioner,
    build_tiny_translator,
    ensure_tiny_captioner,
    ensure_tiny_translator,
)

pytestmark = [
    pytest.mark.slow,  # torch and real models
    pytest.mark.filterwarnings(
        "ignore:Recommended. pip install sacremoses"
    ),  # MarianTokenizer's, as for real
]

TRANSLATOR_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "source.spm",
    "target.spm",
    "tokenizer_config.json",
    "vocab.json",
}
CAPTIONER_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
}
SOURCES = {
    "zh": "一只在雪地里的红狐狸",
    "es": "un zorro rojo en la nieve",
    "ko": "눈 속의 붉은 여우",
    "ja": "雪の中の赤いキツネ",
    "fr": "un renard roux dans la neige",
    "de": "ein roter Fuchs im Schnee",
}
TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
MAX_BYTES = 2 * 1024 * 1024  # each twin: about a megabyte


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-text")


@pytest.fixture(scope="module")
def translator_dir(models_dir: Path) -> Path:
    return ensure_tiny_translator(models_dir)


@pytest.fixture(scope="module")
def captioner_dir(models_dir: Path) -> Path:
    return ensure_tiny_captioner(models_dir)


@pytest.fixture(scope="module")
def translator(translator_dir: Path) -> tuple[Any, Any]:
    from transformers import MarianMTModel, MarianTokenizer

    return MarianTokenizer.from_pretrained(str(translator_dir)), MarianMTModel.from_pretrained(
        str(translator_dir)
    ).eval()


@pytest.fixture(scope="module")
def captioner(captioner_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    return AutoProcessor.from_pretrained(
        str(captioner_dir)
    ), Florence2ForConditionalGeneration.from_pretrained(str(captioner_dir)).eval()


def picture(width: int = 96, height: int = 72) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def is_word_salad(text: str) -> bool:
    """Non-empty, made of ordinary (Latin) word pieces, no special tokens left in."""
    return bool(re.search(r"[a-z]{2,}", text)) and "<" not in text and "⁇" not in text


def translate(translator: tuple[Any, Any], texts: list[str]) -> list[str]:
    import torch

    tok, model = translator
    with torch.inference_mode():
        out = model.generate(**tok(texts, return_tensors="pt", padding=True), max_new_tokens=20)
    return [str(t) for t in tok.batch_decode(out, skip_special_tokens=True)]


def caption(
    captioner: tuple[Any, Any], task: str, image: Image.Image, seed: int | None, **sampling: Any
) -> str:
    """One caption as production asks for it (nucleus sampling, one beam); seed None = greedy."""
    import torch

    proc, model = captioner
    inputs = proc(text=task, images=image, return_tensors="pt")
    if not sampling:
        sampling = {"do_sample": seed is not None, "num_beams": 1} | (
            {"top_p": 0.9} if seed is not None else {}
        )
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        ids = model.generate(
            input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"], max_new_tokens=24, **sampling
        )
    text = proc.batch_decode(ids, skip_special_tokens=False)[0]
    parsed = proc.post_process_generation(text, task=task, image_size=image.size)
    assert set(parsed) == {task}
    return str(parsed[task])


def test_module_import_is_cheap() -> None:
    probe = "import sys, openmj.engines.local.tiny_text; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_build_atomically_cleans_up_after_a_failed_build(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_atomically(tmp_path / "twin", broken)
    assert list(tmp_path.iterdir()) == []


def test_build_atomically_keeps_the_copy_that_finished_first(tmp_path: Path) -> None:
    target = tmp_path / "twin"
    build_atomically(target, lambda folder: (folder / "a.txt").write_text("first"))
    build_atomically(target, lambda folder: (folder / "a.txt").write_text("second"))
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["twin"]


def test_translator_layout(translator_dir: Path) -> None:
    assert translator_dir.name == TINY_TRANSLATOR
    assert {p.name for p in translator_dir.iterdir()} == TRANSLATOR_FILES
    config = json.loads((translator_dir / "config.json").read_text())
    assert config["model_type"] == "marian"
    assert config["architectures"] == ["MarianMTModel"]
    vocab = json.loads((translator_dir / "vocab.json").read_text())
    # as opus-mt: </s> 0, <unk> 1, <pad> last = decoder start, banned from the output
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == len(vocab) - 1
    assert config["decoder_start_token_id"] == config["pad_token_id"] == len(vocab) - 1
    generation = json.loads((translator_dir / "generation_config.json").read_text())
    assert generation["bad_words_ids"] == [[len(vocab) - 1]]
    tokenizer_config = json.loads((translator_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "MarianTokenizer"
    assert sum(p.stat().st_size for p in translator_dir.iterdir()) < MAX_BYTES


def test_translator_tokenises_every_script(translator: tuple[Any, Any]) -> None:
    tok, _ = translator
    for text in SOURCES.values():
        pieces = tok.convert_ids_to_tokens(tok(text)["input_ids"])
        assert pieces[-1] == "</s>"
        assert "<unk>" not in pieces, (text, pieces)


def test_translator_output(translator: tuple[Any, Any]) -> None:
    outputs = translate(translator, [SOURCES["zh"]]) + translate(translator, list(SOURCES.values()))
    assert outputs[0] == outputs[1]  # alone or in a padded batch
    for text, out in zip(["zh", *SOURCES], outputs, strict=True):
        assert is_word_salad(out), (text, out)
    assert len(set(outputs[1:])) >= 3  # the output depends on the input


def test_captioner_layout(captioner_dir: Path, captioner: tuple[Any, Any]) -> None:
    proc, model = captioner
    assert captioner_dir.name == TINY_CAPTIONER
    assert {p.name for p in captioner_dir.iterdir()} == CAPTIONER_FILES
    assert type(proc).__name__ == "Florence2Processor"
    config = json.loads((captioner_dir / "config.json").read_text())
    assert config["model_type"] == "florence2"
    assert config["architectures"] == ["Florence2ForConditionalGeneration"]
    assert (
        json.loads((captioner_dir / "tokenizer_config.json").read_text())["tokenizer_class"]
        == "BartTokenizer"
    )
    processor_config = json.loads((captioner_dir / "processor_config.json").read_text())
    assert processor_config["image_processor"]["image_processor_type"] == "CLIPImageProcessor"
    tok = proc.tokenizer
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.image_token == "<image>"
    assert tok.image_token_id == len(tok) - 1 == model.config.image_token_id
    assert tok.convert_tokens_to_ids(["<loc_0>", "<loc_999>"]) == [
        tok.convert_tokens_to_ids("<od>") + 4,
        tok.convert_tokens_to_ids("<od>") + 1003,
    ]
    assert len(tok) <= model.config.text_config.vocab_size
    assert sum(p.stat().st_size for p in captioner_dir.iterdir()) < MAX_BYTES


def test_captioner_inputs(captioner: tuple[Any, Any]) -> None:
    proc, model = captioner
    image = picture()
    inputs = proc(text="<CAPTION>", images=image, return_tensors="pt")
    side = TINY_CAPTIONER_IMAGE_SIDE
    assert tuple(inputs["pixel_values"].shape) == (1, 3, side, side)
    ids = inputs["input_ids"][0].tolist()
    seq = proc.image_processor.image_seq_length
    assert ids[:seq] == [model.config.image_token_id] * seq
    # the task token is replaced by its prompt, framed by <s> … </s>
    assert proc.tokenizer.decode(ids[seq:]) == "<s>What does the image describe?</s>"


@pytest.mark.parametrize("task", TASKS)
def test_captions_are_seeded_word_salad(captioner: tuple[Any, Any], task: str) -> None:
    image = picture()
    sampled = [caption(captioner, task, image, seed) for seed in (1, 2, 3, 4)]
    for text in sampled:
        assert is_word_salad(text), text
    assert caption(captioner, task, image, 1) == sampled[0]  # same seed, same caption
    assert len(set(sampled)) >= 2  # different seeds, different captions
    greedy = caption(captioner, task, image, None)
    assert is_word_salad(greedy), greedy
    assert caption(captioner, task, image, None) == greedy


def test_ensure_reuses_the_built_twins(models_dir: Path, translator_dir: Path, captioner_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for d in (translator_dir, captioner_dir) for p in d.iterdir()}
    assert ensure_tiny_translator(models_dir) == translator_dir
    assert ensure_tiny_captioner(models_dir) == captioner_dir
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert sorted(p.name for p in models_dir.iterdir()) == sorted([TINY_CAPTIONER, TINY_TRANSLATOR])


def test_builds_are_deterministic(tmp_path: Path, translator_dir: Path, captioner_dir: Path) -> None:
    assert digests(build_tiny_translator(tmp_path / TINY_TRANSLATOR)) == digests(translator_dir)
    assert digests(build_tiny_captioner(tmp_path / TINY_CAPTIONER)) == digests(captioner_dir)


def test_captions_with_the_checkpoint_beams(captioner: tuple[Any, Any]) -> None:
    """Without num_beams, generate takes the checkpoint's 3 beams: beam sampling, seeded just the same."""
    image = picture()
    sampled = [caption(captioner, "<CAPTION>", image, seed, do_sample=True, top_p=0.9) for seed in (1, 1, 2)]
    assert all(is_word_salad(text) for text in sampled), sampled
    assert sampled[0] == sampled[1]
