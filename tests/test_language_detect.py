"""The language detector's verdicts on real prompts (Lingua, no torch): what gets translated."""

from __future__ import annotations

import pytest

from openmj.language.detect import LanguageDetector
from openmj.language.models import PRESETS, detectable, parse_models


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(detectable(PRESETS["opus-mt"]))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("一只在雪地里的红狐狸", "zh"),
        ("雪の中の赤い狐、油絵", "ja"),
        ("눈 속의 붉은 여우, 유화", "ko"),
        ("un zorro rojo en la nieve, pintura al óleo", "es"),
        ("un renard roux dans la neige, peinture à l'huile", "fr"),
        ("ein roter Fuchs im Schnee, Ölgemälde", "de"),
        ("рыжая лиса на снегу", "ru"),
        ("a red fox in the snow, oil painting", "en"),
        ("portrait of a woman, golden hour, 35mm", "en"),
        ("cyberpunk city at night, neon", "en"),  # German scores highest, but English is likely
        ("a cat", "en"),
    ],
)
def test_verdicts(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text) == language


def test_nothing_to_detect(detector: LanguageDetector) -> None:
    assert detector.detect("1234 !!") is None


def test_detection_is_limited_to_what_can_be_translated() -> None:
    only_zh = LanguageDetector(detectable({"zh": "x"}))
    assert only_zh.detect("un zorro rojo en la nieve") == "en"  # no Spanish model: read as written
    assert only_zh.detect("一只在雪地里的红狐狸") == "zh"


def test_translation_model_syntax() -> None:
    assert parse_models("none") == {} and parse_models("") == {}
    assert parse_models("auto", tiny_image_model=True) == PRESETS["tiny"]
    assert parse_models("auto") == PRESETS["opus-mt"]
    assert parse_models("zh=Helsinki-NLP/opus-mt-zh-en, *=./mul") == {
        "zh": "Helsinki-NLP/opus-mt-zh-en",
        "*": "./mul",
    }
    for bad in ("zh", "chinese=x", "zh="):
        with pytest.raises(ValueError, match="LANG=MODEL"):
            parse_models(bad)
