"""Which translation model serves which language: presets and the `--translation-model` syntax.

Pure data (no torch import). Every preset model is a Marian `opus-mt-*-en` model (the Helsinki-NLP
OPUS-MT project, licences in docs/prompt.md, "Translation models"): small (~77 M parameters), fast
on a CPU, and licensed for commercial use. NLLB is not used: its weights are non-commercial.
"""

from __future__ import annotations

ANY = "*"  # the model for a detected language no other entry names
TINY = "tiny"  # the offline twin (engines/local/tiny_text.py), for tests and offline trials

#: name → {language (ISO 639-1) or "*": Hugging Face repo id, local folder or "tiny"}
PRESETS: dict[str, dict[str, str]] = {
    "opus-mt": {
        "zh": "Helsinki-NLP/opus-mt-zh-en",
        "ja": "Helsinki-NLP/opus-mt-ja-en",
        "ko": "Helsinki-NLP/opus-mt-ko-en",
        ANY: "Helsinki-NLP/opus-mt-mul-en",  # Spanish, French, German, Italian, Portuguese, Russian …
    },
    TINY: {"zh": TINY, "ja": TINY, "ko": TINY, ANY: TINY},
}
#: as their model cards state them (zh-en from docs/reference; the others to re-check when a
#: release changes them): both licences allow commercial use, CC-BY with attribution
LICENCES = {
    "Helsinki-NLP/opus-mt-zh-en": "CC-BY-4.0",
    "Helsinki-NLP/opus-mt-ja-en": "Apache-2.0",
    "Helsinki-NLP/opus-mt-ko-en": "Apache-2.0",
    "Helsinki-NLP/opus-mt-mul-en": "Apache-2.0",
}
#: what the "*" model is asked to read, besides the languages named: detection is limited to
#: these and English (fewer candidates, fewer mistakes on short prompts)
ANY_LANGUAGES = ("es", "fr", "de", "it", "pt", "ru", "nl", "pl", "tr", "vi", "id")
NONE = "none"
AUTO = "auto"  # "tiny" with a tiny image model, else "opus-mt" (off on an API-only node: app.py)


def parse_models(text: str, *, tiny_image_model: bool = False) -> dict[str, str]:
    """`--translation-model` → {language: model}: a preset name, "none" ({}), "auto", or
    comma-separated `lang=model` pairs (`zh=Helsinki-NLP/opus-mt-zh-en,*=./models/mul-en`)."""
    name = text.strip()
    if name == AUTO:
        name = TINY if tiny_image_model else "opus-mt"
    if name in ("", NONE):
        return {}
    if name in PRESETS:
        return dict(PRESETS[name])
    out: dict[str, str] = {}
    for entry in name.split(","):
        lang, sep, model = entry.partition("=")
        lang, model = lang.strip().lower(), model.strip()
        if not sep or not model or not (lang == ANY or (lang.isalpha() and len(lang) == 2)):
            raise ValueError(
                f"translation model {entry.strip()!r}: expected LANG=MODEL (LANG a two-letter code or *), "
                f"or one of {', '.join([*PRESETS, NONE, AUTO])}"
            )
        out[lang] = model
    return out


def detectable(models: dict[str, str]) -> list[str]:
    """The languages the detector chooses among: English and what the models translate."""
    langs = [lang for lang in models if lang != ANY]
    if ANY in models:
        langs += [lang for lang in ANY_LANGUAGES if lang not in langs]
    return ["en", *langs]
