"""The local translator: the language detector plus one Marian model per language (or "*").

Loaded at start when translation is on, so a model that is missing or broken stops the server
with a clear message instead of passing prompts through untranslated. torch and transformers are
imported here, when translation is configured, never by an API process that has it off.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openmj.language.detect import LanguageDetector
from openmj.language.models import ANY, TINY, detectable

MAX_INPUT_TOKENS = 256  # a prompt piece longer than this is cut (Marian's positions stop at 512)


class TranslationLoadError(Exception):
    """A configured translation model cannot be loaded; the message says what to do."""


class MarianModel:
    """One `opus-mt-*-en` model: tokenizer and seq2seq weights, one call at a time."""

    def __init__(self, source: str) -> None:
        from transformers import MarianMTModel, MarianTokenizer

        self.source = source
        self.tokenizer: Any = MarianTokenizer.from_pretrained(source)
        self.model: Any = MarianMTModel.from_pretrained(source).eval()
        # the output budget is set per call (max_new_tokens), not by the checkpoint's max_length
        self.model.generation_config.max_length = None
        self._lock = threading.Lock()

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Each text on its own: a batch would pad them to one length and let the longest set
        every text's output budget, so a piece would read differently alone and in company."""
        import torch

        out: dict[str, str] = {}
        with self._lock, torch.inference_mode():
            for text in dict.fromkeys(texts):
                batch = self.tokenizer(
                    [text], return_tensors="pt", truncation=True, max_length=MAX_INPUT_TOKENS
                )
                length = int(batch["input_ids"].shape[1])
                ids = self.model.generate(**batch, max_new_tokens=2 * length + 16)
                out[text] = str(self.tokenizer.batch_decode(ids, skip_special_tokens=True)[0])
        return [out[t] for t in texts]


class LocalTranslator:
    """`core.prompt.translation.Translator` on local models: detect, then translate with the
    language's model (the "*" model for any other detected language)."""

    def __init__(self, models: dict[str, str], models_dir: Path) -> None:
        self.sources = dict(models)
        self.models_dir = models_dir
        self.detector: LanguageDetector | None = None
        self._models: dict[str, MarianModel] = {}

    def load(self) -> None:
        """Every configured model, now; TranslationLoadError names the one that failed."""
        try:
            self.detector = LanguageDetector(detectable(self.sources))
        except ImportError as exc:
            raise TranslationLoadError(
                f"Prompt translation needs the language detector ({exc}): install openmj[local], "
                "or turn translation off with --translation-model none"
            ) from exc
        by_source: dict[str, MarianModel] = {}
        for lang, source in self.sources.items():
            path = self._resolve(source)
            if path not in by_source:
                try:
                    by_source[path] = MarianModel(path)
                except ImportError as exc:
                    raise TranslationLoadError(
                        f"Prompt translation needs transformers, torch and sentencepiece ({exc}): install "
                        "openmj[local], or turn translation off with --translation-model none"
                    ) from exc
                except Exception as exc:  # missing files, no network for a first download, bad weights
                    which = "other languages" if lang == ANY else lang
                    raise TranslationLoadError(
                        f"The translation model {source!r} (for {which}) "
                        f"cannot be loaded: {type(exc).__name__}: {str(exc)[:300]}. Download it first, name "
                        "another with --translation-model LANG=MODEL, or turn translation off with "
                        "--translation-model none"
                    ) from exc
            self._models[lang] = by_source[path]

    def _resolve(self, source: str) -> str:
        if source == TINY:
            from openmj.engines.local.tiny_text import ensure_tiny_translator

            return str(ensure_tiny_translator(self.models_dir))
        return source

    def detect(self, text: str) -> str | None:
        if self.detector is None:
            self.load()
        assert self.detector is not None
        return self.detector.detect(text)

    def translate(self, texts: Sequence[str], language: str) -> list[str]:
        model = self._models.get(language) or self._models.get(ANY)
        if model is None:  # detected, but no model for it: kept as written
            return list(texts)
        return model.translate(texts)

    def serves(self, language: str) -> bool:
        return language in self._models or ANY in self._models
