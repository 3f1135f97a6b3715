"""Translation keeps a prompt's structure: only words reach the translator (core/prompt/translation.py).

The translator here is a dictionary, standing in for the Marian model so the rule itself is what
is tested; tests/test_words.py runs the real detector and the tiny Marian twin end to end.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from openmj.core.prompt import parse
from openmj.core.prompt.translation import pieces, split_parameters, translate_prompt

WORDS = {
    "一只在雪地里的红狐狸": "a red fox in the snow",
    "人": "people",
    "猫": "cat",
    "狗": "dog",
    "红色": "red",
    "蓝色": "blue",
    "花": "flower",
    "树": "trees",
    "高楼": "tall buildings",
    "un zorro rojo": "a red fox",
    "gatos": "cats",
}


class Dictionary:
    """Detects by script or by the words it knows; translates word for word."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []

    def detect(self, text: str) -> str | None:
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return "zh"
        return "es" if "zorro" in text or "gatos" in text else "en"

    def translate(self, texts: Sequence[str], language: str) -> list[str]:
        self.calls.append((list(texts), language))
        return [WORDS.get(t, f"<{t}>") for t in texts]


@pytest.mark.parametrize(
    "prompt",
    [
        "一只在雪地里的红狐狸 --ar 16:9 --no 人",
        "https://example.com/a.png 猫::2 狗::-0.5 {红色, 蓝色} 花 --no 树, 高楼 --s 250",
        "a cat —ar 3:2",
        "",
        "   spaced   out  ",
        "--ar 1:1",
    ],
)
def test_pieces_put_back_together_are_the_prompt(prompt: str) -> None:
    assert "".join(p.text for p in pieces(prompt)) == prompt


def test_only_words_are_translated_and_structure_is_kept() -> None:
    tr = Dictionary()
    done = translate_prompt(
        "https://example.com/a.png 猫::2 狗::-0.5 {红色, 蓝色} 花 --no 树, 高楼 --s 250", tr, "all"
    )
    assert done is not None and done.language == "zh"
    assert done.prompt == (
        "https://example.com/a.png cat::2 dog::-0.5 {red, blue} flower --no trees, tall buildings --s 250"
    )
    sent = tr.calls[0][0]
    assert sent == ["猫", "狗", "红色", "蓝色", "花", "树", "高楼"]  # no link, weight, brace or parameter
    assert dict(done.pairs)["高楼"] == "tall buildings"
    parsed = parse(done.prompt).to_dict()  # the English prompt parses with the same structure
    assert parsed["params"]["no"] == ["trees", "tall buildings"] and parsed["params"]["stylize"] == 250


def test_the_issue_example() -> None:
    done = translate_prompt("一只在雪地里的红狐狸 --ar 16:9 --no 人", Dictionary(), "all")
    assert done is not None and done.prompt == "a red fox in the snow --ar 16:9 --no people"
    assert done.record()["original"] == "一只在雪地里的红狐狸 --ar 16:9 --no 人"


def test_english_and_scope() -> None:
    tr = Dictionary()
    assert translate_prompt("a red fox --ar 16:9", tr, "all") is None  # English: as written
    assert translate_prompt("un zorro rojo --ar 2:3", tr, "cjk") is None  # Spanish is not CJK
    done = translate_prompt("un zorro rojo --ar 2:3", tr, "all")
    assert done is not None and done.prompt == "a red fox --ar 2:3" and done.language == "es"
    assert translate_prompt("一只在雪地里的红狐狸", tr, "off") is None
    assert not tr.calls[:-1] or tr.calls[0][1] == "es"


def test_latin_words_in_a_cjk_prompt_are_kept() -> None:
    tr = Dictionary()
    done = translate_prompt("猫 --no text, 人", tr, "cjk")
    assert done is not None and done.prompt == "cat --no text, people"
    assert ["text"] not in [c[0] for c in tr.calls] and "text" not in tr.calls[0][0]


class Mischief(Dictionary):
    def translate(self, texts: Sequence[str], language: str) -> list[str]:
        return ["fox --ar 9:16 {x} ::5 <b>" for _ in texts]


def test_a_translation_cannot_add_structure() -> None:
    done = translate_prompt("猫 --ar 16:9", Mischief(), "all")
    assert done is not None and done.prompt == "fox ar 9:16 x 5 b --ar 16:9"
    assert parse(done.prompt).to_dict()["params"]["ar"] == "16:9"


class Silent(Dictionary):
    def translate(self, texts: Sequence[str], language: str) -> list[str]:
        return ["" for _ in texts]


def test_an_empty_translation_keeps_the_words() -> None:
    done = translate_prompt("猫 --no 人", Silent(), "all")
    assert done is not None and done.prompt == "猫 --no 人"


def test_split_parameters() -> None:
    assert split_parameters("a cat, b --ar 2:3 --no x") == ("a cat, b ", "--ar 2:3 --no x")
    assert split_parameters("a cat") == ("a cat", "")
    assert split_parameters("poppies--ar 2:3") == ("poppies--ar 2:3", "")  # not a parameter token
