"""A parsed prompt written back as text parses to the same prompt (core/prompt/render.py)."""

from __future__ import annotations

import pytest

from openmj.core.checks import prompt_spec
from openmj.core.prompt import parse
from openmj.core.prompt.render import prompt_text

CORPUS = [
    "a cat",
    "a cat --ar 16:9 --s 250 --no dog, tall tree --tile --seed 3",
    "https://a.b/c.png a cat --iw 1.5 --chaos 20 --weird 100",
    "x --style raw --sref 123 https://x.y/z.png::2 --sv 4 --sw 50",
    "hot::2 dog::-0.5 cat --q 2",
    "a bird --stop 50 --v 6",
    "a --p abc --exp 10 --relax",
    "anime girl --niji 6 --ar 2:3",
    "portrait --v 6.1 --stealth --fast",
    "a fox --oref https://a.b/o.png --ow 200 --v 7",
    "draft of a house --draft --v 7",
]


@pytest.mark.parametrize("text", CORPUS)
@pytest.mark.parametrize("version", ["7", "niji 7"])
def test_round_trip(text: str, version: str) -> None:
    first = parse(text, version).to_dict()
    again = parse(prompt_text(prompt_spec(first)), version).to_dict()
    for field in ("text", "image_urls", "segments", "effective_model"):
        assert again.get(field) == first.get(field), (field, prompt_text(prompt_spec(first)))
    # the model the prompt ran under is written out (`--v 7`): the same model, now explicit
    added = {"version", "niji"} - set(first["params"])
    assert {k: v for k, v in again["params"].items() if k not in added} == first["params"]


def test_the_account_default_is_written() -> None:
    spec = prompt_spec(parse("a cat", "6.1").to_dict())
    assert prompt_text(spec) == "a cat --v 6.1"
    assert parse(prompt_text(spec)).to_dict()["effective_model"] == "6.1"
