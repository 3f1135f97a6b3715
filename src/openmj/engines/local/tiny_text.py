"""Build offline "tiny twins" of the text models: real transformers classes and file layout, random weights.

- `tiny-opus-mt`    ↔ Helsinki-NLP/opus-mt-zh-en: MarianTokenizer, MarianMTModel
- `tiny-florence-2` ↔ florence-community/Florence-2-base: Florence2Processor,
  Florence2ForConditionalGeneration

Each twin is what `save_pretrained` writes for the real classes, so the real `from_pretrained`,
tokenisation (SentencePiece for Marian, byte-level BPE with Florence-2's task and location tokens),
image preprocessing, `generate` and Florence-2's `post_process_generation` all run offline; only the
sizes are small and the output is word salad. The tokenizers are trained here, from the small
in-memory corpora below, so every script the product translates (Chinese, Japanese, Korean, Spanish,
French, German, English) tokenises to real pieces rather than `<unk>`.

Random weights alone give output that ignores the input, repeats one piece, or is mostly `<unk>`,
`</s>` or Florence-2's `<loc_…>` tokens. What steers it to varied ordinary words, all in the saved
weights and configs (nothing extra on the load or generate path): weight matrices drawn wider than
the default init (std 0.3), so the output depends on the input; a per-token preference (whole words >
other pieces > special tokens) added to the logits, through Marian's `final_logits_bias` (a real
checkpoint tensor) and, for Florence-2, whose LM head is tied to the token embeddings, through the
last embedding dimension, which the decoder's last layer norm holds at 1; and for Marian
`no_repeat_ngram_size=1` in its generation_config.json (the real one has none). Builds are seeded and
single-threaded: the same bytes every time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TINY_TRANSLATOR = "tiny-opus-mt"
TINY_CAPTIONER = "tiny-florence-2"

#: twin name -> the hub checkpoint it mirrors
TINY_TEXT_TWIN_OF: dict[str, str] = {
    TINY_TRANSLATOR: "Helsinki-NLP/opus-mt-zh-en",
    TINY_CAPTIONER: "florence-community/Florence-2-base",
}

#: the captioner's input side (a square; Florence-2-base uses 768); its vision tower strides by 32 in all
TINY_CAPTIONER_IMAGE_SIDE = 64

# Source-side corpus of the translator: prompts as users write them, in every language the product
# translates. The English part doubles as the target side (opus-mt-*-en writes English).
_TRANSLATOR_CORPUS: dict[str, list[str]] = {
    "zh": [
        "一只在雪地里的红狐狸",
        "城市夜晚的霓虹灯下停着一辆蓝色汽车",
        "一只猫睡在窗边的沙发上",
        "山上的日出非常美丽",
        "老人在公园里看书",
        "一个女孩在海边放风筝",
        "秋天的森林里落满了金色的叶子",
        "桌子上有一杯热咖啡和一本书",
        "雨后的街道上倒映着灯光",
        "一条小船漂在平静的湖面上",
        "画一幅水彩风格的花园",
        "孩子们在草地上踢足球",
        "一座古老的寺庙和安静的庭院",
        "柔和光线下的女人肖像，高度细节",
    ],
    "ja": [
        "雪の中の赤いキツネ",
        "夜の街に青い車が止まっている",
        "窓辺のソファで猫が眠っている",
        "山の上から見る日の出はとても美しい",
        "桜の木の下でお弁当を食べる",
        "古いお寺と静かな庭",
        "雨の日の東京の街並み",
        "少女が海辺で凧を揚げている",
        "テーブルの上に温かいお茶がある",
        "水彩画風の花畑を描いてください",
    ],
    "ko": [
        "눈 속의 붉은 여우",
        "밤거리 네온사인 아래 파란 자동차",
        "창가 소파에서 고양이가 자고 있다",
        "산 위의 일출이 아름답다",
        "공원에서 책을 읽는 노인",
        "바닷가에서 연을 날리는 소녀",
        "가을 숲에 노란 잎이 가득하다",
        "탁자 위에 뜨거운 커피 한 잔",
        "비 온 뒤 거리에 불빛이 비친다",
        "잔잔한 호수 위의 작은 배",
    ],
    "es": [
        "un zorro rojo en la nieve",
        "un coche azul bajo las luces de neón de la ciudad",
        "un gato duerme en el sofá junto a la ventana",
        "el amanecer sobre las montañas es precioso",
        "una niña vuela una cometa en la playa",
        "un bosque de otoño lleno de hojas doradas",
        "una taza de café caliente sobre la mesa",
        "las calles mojadas después de la lluvia",
        "un pequeño barco en un lago tranquilo",
        "pinta un jardín con flores al estilo acuarela",
    ],
    "fr": [
        "un renard roux dans la neige",
        "une voiture bleue sous les néons de la ville",
        "un chat dort sur le canapé près de la fenêtre",
        "le lever du soleil sur les montagnes est magnifique",
        "une fille fait voler un cerf-volant sur la plage",
        "une forêt d'automne pleine de feuilles dorées",
        "une tasse de café chaud sur la table",
        "les rues mouillées après la pluie",
        "un petit bateau sur un lac calme",
        "peins un jardin fleuri à l'aquarelle, très détaillé",
    ],
    "de": [
        "ein roter Fuchs im Schnee",
        "ein blaues Auto unter Neonlichtern in der Stadt",
        "eine Katze schläft auf dem Sofa am Fenster",
        "der Sonnenaufgang über den Bergen ist wunderschön",
        "ein Mädchen lässt am Strand einen Drachen steigen",
        "ein Herbstwald voller goldener Blätter",
        "eine Tasse heißer Kaffee auf dem Tisch",
        "nasse Straßen nach dem Regen",
        "ein kleines Boot auf einem ruhigen See",
        "male einen Blumengarten im Aquarellstil",
    ],
    "en": [
        "a red fox in the snow",
        "a blue car under neon lights in the city at night",
        "a cat sleeping on the sofa by the window",
        "the sunrise over the mountains is beautiful",
        "an old man reading a book in the park",
        "a girl flying a kite on the beach",
        "an autumn forest full of golden leaves",
        "a cup of hot coffee and a book on the table",
        "wet streets reflecting the lights after the rain",
        "a small boat on a calm lake",
        "paint a flower garden in watercolor style",
        "children playing football on the grass",
        "an old temple with a quiet garden",
        "a portrait of a woman in soft light, highly detailed",
        "Eating a lunch box under the cherry tree.",
        "The streets of Tokyo on a rainy day!",
    ],
}

# The captioner's corpus: captions in Florence-2's styles (short, detailed, paragraph) and its prompts.
_CAPTIONER_CORPUS: list[str] = [
    "A red fox standing in fresh snow.",
    "A blue car parked under neon lights in a city street at night.",
    "A cat sleeping on a grey sofa next to a window.",
    "The sun rising over snowy mountains.",
    "An old man reading a book on a bench in the park.",
    "A girl flying a colorful kite on a sandy beach.",
    "An autumn forest with golden leaves on the ground.",
    "A cup of hot coffee next to an open book on a wooden table.",
    "Wet streets reflecting the lights of shops after the rain.",
    "A small white boat on a calm lake surrounded by trees.",
    "A green car parked in front of a yellow building.",
    "Children playing football on green grass on a sunny day.",
    "An old temple with a quiet garden and a stone path.",
    "A portrait of a young woman with long brown hair in soft light.",
    "The image shows a bowl of fruit with apples, oranges and bananas on a kitchen counter.",
    "The image shows a living room with a large window, a brown leather couch and a small plant.",
    "In this image we can see a dog running across a field of tall grass under a clear blue sky.",
    "In this image we can see a city skyline at sunset with tall buildings and a river in front.",
    "The image is a watercolor painting of a flower garden with red, pink and purple flowers.",
    "The image is a close-up photograph of a butterfly resting on a yellow flower.",
    "The picture shows two people walking along a path in a park, with trees on both sides.",
    "A black and white photo of a bridge over a river, with mountains in the background.",
    "A plate of pasta with tomato sauce and basil on a white table cloth.",
    "A train crossing a bridge in the countryside, with clouds in the sky.",
    "A bicycle leaning against a brick wall on a quiet street.",
    "A bird sitting on a branch of a tree covered with snow.",
    "What does the image describe?",
    "Describe in detail what is shown in the image.",
    "Describe with a paragraph what is shown in the image.",
    "Locate the objects with category name in the image.",
    "What is the text in the image?",
]

# Florence-2's tokens on top of BART's, in the real order: the task/region tags and 1000 location bins
# (as extra special tokens), then `<image>` (the real image_token_id is 51289 = 50265 + 1024).
_FLORENCE_EXTRA_TOKENS: list[str] = (
    ["<od>", "</od>", "<ocr>", "</ocr>"]
    + [f"<loc_{i}>" for i in range(1000)]
    + ["<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>", "<grounding>", "</grounding>"]
    + ["<seg>", "</seg>", "<sep>", "<region_cap>", "</region_cap>", "<region_to_desciption>"]
    + ["</region_to_desciption>", "<proposal>", "</proposal>", "<poly>", "</poly>", "<and>"]
)
_FLORENCE_IMAGE_TOKEN = "<image>"

# What Florence2PostProcessor parses and how (as the converted checkpoints carry it, banned words shortened).
_FLORENCE_POST_PROCESSOR_CONFIG: dict[str, Any] = {
    "ocr": {
        "pattern": r"(.+?)" + r"<loc_(\d+)>" * 8,
        "area_threshold": 0.0,
    },
    "phrase_grounding": {
        "banned_grounding_tokens": ["it", "this", "that", "the image", "image", "images", "the", "a", "an"],
    },
    "pure_text": {},
    "description_with_bboxes": {},
    "description_with_polygons": {},
    "polygons": {},
    "bboxes": {},
    "description_with_bboxes_or_polygons": {},
}


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(folder)` into a fresh sibling folder of `target`, then move it into place at once.

    Readers never see a half-written `target`. When several processes race, each builds its own copy
    (named after its pid) and the first to finish wins; the others drop theirs. Returns `target`.
    """
    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.exists():
            raise
    return target


def _train_sentencepiece(sentences: list[str], vocab_size: int) -> bytes:
    """A unigram SentencePiece model (serialised) trained on `sentences`, covering all their characters."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # the corpus is small: take as many pieces as it yields, up to vocab_size
        character_coverage=1.0,
        num_threads=1,  # deterministic
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return model.getvalue()


def _spm_pieces(model: bytes) -> list[str]:
    """The ordinary pieces of a SentencePiece model, in id order (no <unk>, <s>, </s>)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    return [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))
    ]


def _english_words(lines: list[str]) -> set[str]:
    import re

    return {w for line in lines for w in re.findall(r"[a-z]+", line.lower())}


def _translator_preference(tokens: list[str], target_pieces: list[str]) -> list[float]:
    """Marian's final_logits_bias for the random model: whole English words > other target pieces >
    an early </s> > source-only pieces > <unk> (a beam would otherwise settle on an empty output)."""
    words = {"▁" + w for w in _english_words(_TRANSLATOR_CORPUS["en"] + _CAPTIONER_CORPUS)}
    target = set(target_pieces)
    special = {"</s>": -4.0, "<unk>": -20.0, "<pad>": -20.0}
    return [special.get(t, 3.0 if t in words else 0.0 if t in target else -8.0) for t in tokens]


def _write_translator(folder: Path) -> None:
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    source = [s for lines in _TRANSLATOR_CORPUS.values() for s in lines]
    english = _TRANSLATOR_CORPUS["en"] + _CAPTIONER_CORPUS
    source_spm = _train_sentencepiece(source, vocab_size=800)
    target_spm = _train_sentencepiece(english, vocab_size=500)
    target_pieces = _spm_pieces(target_spm)
    # one vocabulary shared by both sides, as in opus-mt-zh-en: </s> 0, <unk> 1, pieces, <pad> last
    tokens = ["</s>", "<unk>"]
    for piece in _spm_pieces(source_spm) + target_pieces:
        if piece not in tokens:
            tokens.append(piece)
    tokens.append("<pad>")
    vocab = {t: i for i, t in enumerate(tokens)}

    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "source.spm").write_bytes(source_spm)
        (Path(work) / "target.spm").write_bytes(target_spm)
        (Path(work) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=2))
        tok = MarianTokenizer(
            source_spm=str(Path(work) / "source.spm"),
            target_spm=str(Path(work) / "target.spm"),
            vocab=str(Path(work) / "vocab.json"),
            source_lang="zho",
            target_lang="eng",
            model_max_length=512,
        )
        tok.save_pretrained(str(folder))

    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=512,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=vocab["</s>"],
        forced_eos_token_id=vocab["</s>"],
        bos_token_id=vocab["</s>"],
        architectures=["MarianMTModel"],
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():  # larger than the init: output that depends on the input
            if param.dim() >= 2:
                param.normal_(0.0, 0.3)
        model.final_logits_bias.copy_(torch.tensor([_translator_preference(tokens, target_pieces)]))
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]],
        bos_token_id=vocab["</s>"],
        decoder_start_token_id=pad,
        eos_token_id=vocab["</s>"],
        forced_eos_token_id=vocab["</s>"],
        max_length=512,
        num_beams=4,
        pad_token_id=pad,
        renormalize_logits=True,
        no_repeat_ngram_size=1,  # not in the real one: a random model would repeat one piece
    )
    model.save_pretrained(str(folder))


def build_tiny_translator(target: Path) -> Path:
    """Build and save the tiny Marian translator (twin of opus-mt-zh-en) into `target`; returns it."""
    return build_atomically(target, _write_translator)


def ensure_tiny_translator(models_dir: Path) -> Path:
    """The tiny translator folder `models_dir/tiny-opus-mt`, built on first use."""
    target = models_dir / TINY_TRANSLATOR
    if not (target / "config.json").exists():
        build_tiny_translator(target)
    return target


def _florence_tokenizer(work: Path) -> Any:
    """A BART-style byte-level BPE tokenizer trained on the caption corpus, with Florence-2's extra tokens.

    Layout as in BART: <s> 0, <pad> 1, </s> 2, <unk> 3, the learned pieces, <mask>; then Florence-2's
    task / location tokens (extra special tokens) and `<image>` last.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, BartTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,  # an upper bound: the corpus yields about 760
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CAPTIONER_CORPUS, trainer=trainer)
    learned = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(learned["vocab"])
    vocab["<mask>"] = len(vocab)
    tok = BartTokenizer(
        vocab=vocab,
        merges=[tuple(m) for m in learned["merges"]],
        extra_special_tokens=_FLORENCE_EXTRA_TOKENS,
        model_max_length=1024,
    )
    tok.add_tokens([AddedToken(_FLORENCE_IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    folder = work / "_tok"
    tok.save_pretrained(str(folder))
    _tidy_tokenizer_config(folder, image_token=_FLORENCE_IMAGE_TOKEN)
    return AutoTokenizer.from_pretrained(str(folder))


def _tidy_tokenizer_config(folder: Path, image_token: str | None = None) -> None:
    """Florence-2's tokenizer_config.json as the real checkpoint has it: the `BartTokenizer` class name
    (transformers 5 made it an alias and records `RobertaTokenizer`), `image_token` as a named token
    (read back as tokenizer.image_token / image_token_id), and without the load-time flags
    (`is_local`, `local_files_only`) that transformers 5 copies into a re-saved config."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    config["tokenizer_class"] = "BartTokenizer"
    if image_token is not None:
        config["image_token"] = image_token
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _preference_dimension(tok: Any, vocab_size: int) -> list[float]:
    """Per-token preference for the captioner's output: whole words > other pieces > special tokens."""
    words = _english_words(_CAPTIONER_CORPUS)
    special = set(tok.all_special_ids) | {tok.image_token_id}
    scores = [-6.0] * vocab_size  # padding rows past the tokenizer stay unlikely too
    for token, i in tok.get_vocab().items():
        if i in special:
            continue
        text = token.removeprefix("Ġ")
        scores[i] = 3.0 if token.startswith("Ġ") and text.lower() in words else 0.0
    return scores


def _write_captioner(folder: Path) -> None:
    import torch
    from transformers import (
        BartConfig,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
        GenerationConfig,
    )

    work = folder / "_work"
    tok = _florence_tokenizer(work)
    side = TINY_CAPTIONER_IMAGE_SIDE
    # the PIL variant needs no torchvision; it saves as `CLIPImageProcessor`, like the real one
    image_processor = CLIPImageProcessorPil(
        do_resize=True,
        size={"height": side, "width": side},
        resample=3,  # bicubic
        do_center_crop=False,
        crop_size={"height": side, "width": side},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    )
    # the vision tower strides by 4·2·2·2 = 32: (side/32)² spatial tokens plus one pooled (temporal) token
    image_processor.image_seq_length = (side // 32) ** 2 + 1
    processor = Florence2Processor(
        image_processor=image_processor, tokenizer=tok, post_processor_config=_FLORENCE_POST_PROCESSOR_CONFIG
    )
    processor.save_pretrained(str(folder))
    _tidy_tokenizer_config(folder)
    shutil.rmtree(work, ignore_errors=True)

    d_model = 32
    vocab_size = -(-len(tok) // 64) * 64  # padded to a multiple of 64, as the converted checkpoints are
    text_config = BartConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=1024,
        activation_function="gelu",
        scale_embedding=False,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
    )
    vision_config = Florence2VisionConfig(
        depths=(1, 1, 1, 1),
        embed_dim=(8, 16, 32, 32),
        num_heads=(1, 2, 4, 4),
        num_groups=(1, 2, 4, 4),
        window_size=2,
        projection_dim=d_model,
    )
    config = Florence2Config(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=tok.image_token_id,
        architectures=["Florence2ForConditionalGeneration"],
    )
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():  # larger than the init: output that depends on the input
            if param.dim() >= 2:
                param.normal_(0.0, 0.3)
        # The LM head is tied to the token embeddings: give the last embedding dimension a per-token
        # preference and make the decoder's last layer norm output a constant 1 there, so each logit
        # gets that preference added (words over fragments, special tokens such as <loc_…> unlikely).
        embeddings = model.get_input_embeddings().weight
        embeddings[:, -1] = torch.tensor(_preference_dimension(tok, vocab_size))
        last_norm = model.model.language_model.decoder.layers[-1].final_layer_norm
        last_norm.weight[-1] = 0.0
        last_norm.bias[-1] = 1.0
    model.generation_config = GenerationConfig(
        bos_token_id=0,
        decoder_start_token_id=2,
        eos_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        pad_token_id=1,
        no_repeat_ngram_size=3,
        num_beams=3,
        early_stopping=True,
    )
    model.save_pretrained(str(folder))


def build_tiny_captioner(target: Path) -> Path:
    """Build and save the tiny Florence-2 captioner (twin of Florence-2-base) into `target`; returns it."""
    return build_atomically(target, _write_captioner)


def ensure_tiny_captioner(models_dir: Path) -> Path:
    """The tiny captioner folder `models_dir/tiny-florence-2`, built on first use."""
    target = models_dir / TINY_CAPTIONER
    if not (target / "config.json").exists():
        build_tiny_captioner(target)
    return target
