"""Describe and Shorten rules (core/words.py): prompts from captions and from measured word effects."""

from __future__ import annotations

import pytest

from openmj.core import words
from openmj.core.followups import Followup, offered
from openmj.core.prompt import parse
from openmj.core.tasks import ImageResult, Operation, Speed, Status, Task, TaskError


@pytest.mark.parametrize(
    ("size", "ar"),
    [
        ((1024, 1024), "1:1"),
        ((1500, 1000), "3:2"),
        ((1000, 800), "5:4"),
        ((1023, 683), "3:2"),
        ((1456, 816), "16:9"),
    ],
)
def test_aspect_text(size: tuple[int, int], ar: str) -> None:
    assert words.aspect_text(*size) == ar
    assert parse(f"a cat --ar {ar}").to_dict()["params"]["ar"] == ar  # always a valid --ar


def test_caption_to_prompt() -> None:
    assert words.caption_to_prompt("The image shows a red fox in the snow.") == "a red fox in the snow"
    assert (
        words.caption_to_prompt("In this image, a cat --ar 2:3 sits :: on a {mat}")
        == "a cat ar 2:3 sits on a mat"
    )
    assert len(words.caption_to_prompt(" ".join(["word"] * 200)).split()) == words.MAX_DESCRIBED_WORDS


def test_describe_output() -> None:
    out = words.describe_output(["A fox.", "A red fox in snow.", "A fox in a forest", "Snow"], 1500, 1000)
    assert out["prompts"] == [
        "a fox --ar 3:2",
        "a red fox in snow --ar 3:2",
        "a fox in a forest --ar 3:2",
        "snow --ar 3:2",
    ]
    with pytest.raises(TaskError):
        words.describe_output(["a fox", "", "", ""], 10, 10)


def test_shorten_output_keeps_the_important_words_in_order_and_the_parameters() -> None:
    text = "a very beautiful red fox sitting in the deep white snow"
    effects = [0.01, 0.02, 0.05, 0.6, 1.0, 0.1, 0.03, 0.01, 0.2, 0.3, 0.9]
    out = words.shorten_output(f"{text} --ar 16:9 --s 250", text, effects)
    prompts = out["prompts"]
    assert len(prompts) == 5 and len(set(prompts)) == 5
    assert all(p.endswith(" --ar 16:9 --s 250") for p in prompts)
    lengths = [len(p.removesuffix(" --ar 16:9 --s 250").split()) for p in prompts]
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < len(text.split())
    assert prompts[-1] == "red fox snow --ar 16:9 --s 250"  # the three largest effects, in order
    assert [w for w, _ in out["tokens"]] == text.split()
    assert dict((w, s) for w, s in out["tokens"])["fox"] == 1.0


def test_shorten_keeps_image_links_and_tidies_commas() -> None:
    text = "red fox, in snow, cinematic"
    out = words.shorten_output(f"https://e.com/a.png {text} --ar 2:3", text, [0.9, 1.0, 0.0, 0.0, 0.5])
    assert out["prompts"][-1] == "https://e.com/a.png fox --ar 2:3"
    assert all(",," not in p and not p.split(" --")[0].endswith(",") for p in out["prompts"])


def test_a_short_prompt_gives_fewer_options_never_the_whole_prompt() -> None:
    out = words.shorten_output("red fox", "red fox", [0.2, 1.0])
    assert out["prompts"] == ["fox"]
    with pytest.raises(TaskError):
        words.check_shortenable("fox")
    with pytest.raises(TaskError):
        words.check_shortenable(" ".join(["w"] * (words.SHORTEN_MAX_WORDS + 1)))


def _task(operation: Operation, output: dict | None, status: Status = Status.COMPLETED) -> Task:
    return Task(
        id="t1",
        owner="k",
        dialect="mjproxy",
        operation=operation,
        model="midjourney",
        status=status,
        progress=100,
        prompt="",
        spec={"options": {"image_url": "data:image/png;base64,AAAA"}},
        request={},
        speed=Speed.FAST,
        seed=1,
        created_at=0.0,
        results=[ImageResult("0.png", 30, 20)] if operation is Operation.DESCRIBE else [],
        output=output,
    )


def test_followups_and_chosen_prompts() -> None:
    described = _task(Operation.DESCRIBE, {"prompts": ["a", "b", "c", "d"]})
    assert offered(described) == [Followup.IMAGINE_DESCRIBED, Followup.DESCRIBE_AGAIN]
    assert words.chosen_prompt(described, 2, Operation.DESCRIBE) == "b"
    assert words.describe_again(described) == {"image_url": "data:image/png;base64,AAAA"}
    shortened = _task(Operation.SHORTEN, {"prompts": ["x", "y"]})
    assert offered(shortened) == [Followup.IMAGINE_SHORTENED]
    for bad in (
        lambda: words.chosen_prompt(described, 5, Operation.DESCRIBE),
        lambda: words.chosen_prompt(described, 1, Operation.SHORTEN),  # PromptAnalyzer under a describe
        lambda: words.chosen_prompt(
            _task(Operation.DESCRIBE, None, Status.PROCESSING), 1, Operation.DESCRIBE
        ),
        lambda: words.describe_again(shortened),
    ):
        with pytest.raises(TaskError):
            bad()
