"""Which language a prompt is written in: the Lingua detector (n-gram models, no network).

Short prompts are ambiguous ("cyberpunk city at night, neon" scores German 0.51, English 0.40),
and translating English by mistake garbles it, so a text counts as foreign only when English is
unlikely; otherwise it is left as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: a text is foreign when English's confidence (Lingua's values sum to 1) is at most this, or the
#: best language is this many times as likely: "a cat" (Italian 0.21, English 0.19) is kept,
#: "zorro rojo" (Spanish 0.69, English 0.03) and "un gato negro" (English 0.10) are translated
ENGLISH_FLOOR = 0.12
ENGLISH_RATIO = 3.0


class LanguageDetector:
    def __init__(self, languages: Sequence[str]) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        chosen = {Language.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in languages}
        if len(chosen) < 2:
            chosen.add(Language.ENGLISH if Language.ENGLISH not in chosen else Language.CHINESE)
        # preloaded: the first Latin-script prompt would otherwise wait ~1 s for the models
        self._detector: Any = (
            LanguageDetectorBuilder.from_languages(*chosen).with_preloaded_language_models().build()
        )

    def detect(self, text: str) -> str | None:
        values = self._detector.compute_language_confidence_values(text)
        if not values or values[0].value <= 0:
            return None
        scores = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
        best = values[0].language.iso_code_639_1.name.lower()
        english = scores.get("en", 0.0)
        if best == "en" or (english > ENGLISH_FLOOR and values[0].value < ENGLISH_RATIO * english):
            return "en"
        return best
