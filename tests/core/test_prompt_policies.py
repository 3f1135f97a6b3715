"""Dialect policies (issue 3 item 3) and the engine accessors."""

from __future__ import annotations

import pytest

from openmj.core.prompt import PromptError, grid_size, parse
from openmj.core.prompt.policies import apixo_prompt, evolink_prompt, kie_prompt

IMG = "https://cdn.example.com/a.png"
IMG2 = "https://cdn.example.com/b.jpg"


# EvoLink (seed 000) ----------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--v 6", "--version 5.2", "--v 9", "--v", "—v 6.1"])
def test_evolink_version_locked_to_7(flag: str) -> None:
    parsed, speed = evolink_prompt(f"a cat {flag} --ar 3:2")
    assert parsed.effective_model == "7"
    assert parsed.params == {"ar": "3:2"}
    assert speed is None


@pytest.mark.parametrize(
    "prompt", ["a cat --niji", "a cat --niji 6", "a cat —niji 7 --ar 1:1", "{a, b --niji} cat"]
)
def test_evolink_refuses_niji(prompt: str) -> None:
    with pytest.raises(PromptError, match="`--niji` is not supported") as info:
        evolink_prompt(prompt)
    assert info.value.code == "E_UNSUPPORTED"


@pytest.mark.parametrize(
    "flag,speed",
    [("--fast", "fast"), ("--turbo", "turbo"), ("--draft", "draft"), ("--relax", "relax"), ("", None)],
)
def test_evolink_strips_speed(flag: str, speed: str | None) -> None:
    parsed, got = evolink_prompt(f"a cat --s 500 {flag}")
    assert got == speed
    assert parsed.params == {"stylize": 500}


def test_evolink_first_speed_wins_and_all_are_removed() -> None:
    parsed, speed = evolink_prompt("a cat --turbo --draft --tile")
    assert speed == "turbo"
    assert parsed.params == {"tile": True}  # --draft stripped, so no draft/tile conflict


def test_evolink_image_rules() -> None:
    with pytest.raises(PromptError) as info:
        evolink_prompt(IMG)
    assert info.value.code == "E_SINGLE_IMAGE"
    assert evolink_prompt(f"{IMG} {IMG2}")[0].image_urls == [IMG, IMG2]
    assert evolink_prompt(f"{IMG} {IMG2} blend")[0].text == "blend"
    assert evolink_prompt(f"{IMG} a watercolor sunset --iw 1.5")[0].params == {"iw": 1.5}
    with pytest.raises(PromptError) as info:
        evolink_prompt("https://example.com/a.bmp a cat")
    assert info.value.code == "E_LINK"


def test_evolink_length_limit_is_8192() -> None:
    assert evolink_prompt("a" * 8192)[0].text == "a" * 8192
    with pytest.raises(PromptError, match="too long"):
        evolink_prompt("a" * 8193)


def test_evolink_other_errors_unchanged() -> None:
    with pytest.raises(PromptError, match="`--s` must be between 0 and 1000"):
        evolink_prompt("a cat --s 5000 --v 6")


# APIXO ----------------------------------------------------------------------------------------
def test_apixo_drops_text_from_first_double_dash() -> None:
    parsed = apixo_prompt("a cat --ar 3:2 --foo", {})
    assert parsed.text == "a cat"
    assert parsed.params == {}
    assert parsed.effective_model == "6.1"  # APIXO default version
    assert apixo_prompt("poppies--ar 2:3", {}).text == "poppies"


def test_apixo_fields_become_parameters() -> None:
    parsed = apixo_prompt(
        "a cat",
        {
            "aspect_ratio": "16:9",
            "variety": 10,
            "stylization": 250,
            "weirdness": 100,
            "version": "v7",
            "speed": "turbo",
        },
    )
    assert parsed.params == {
        "ar": "16:9",
        "chaos": 10,
        "stylize": 250,
        "weird": 100,
        "version": "7",
        "speed": "turbo",
    }
    assert parsed.effective_model == "7"


def test_apixo_v1_field_names_and_newer_names_win() -> None:
    parsed = apixo_prompt("a cat", {"aspect": "2:3", "chaos": 5, "stylize": 50, "weird": 7})
    assert parsed.params == {"ar": "2:3", "chaos": 5, "stylize": 50, "weird": 7}
    parsed = apixo_prompt("a cat", {"aspect": "2:3", "aspect_ratio": "3:2"})
    assert parsed.params == {"ar": "3:2"}


@pytest.mark.parametrize(
    "version,model,params",
    [
        ("v6", "6", {"version": "6"}),
        ("v6.1", "6.1", {"version": "6.1"}),
        ("niji 6", "niji 6", {"niji": "6"}),
        ("niji 7", "niji 7", {"niji": "7"}),
        ("V7", "7", {"version": "7"}),
    ],
)
def test_apixo_versions(version: str, model: str, params: dict) -> None:
    parsed = apixo_prompt("a cat", {"version": version})
    assert parsed.effective_model == model
    assert parsed.params == params


@pytest.mark.parametrize(
    "speed,params",
    [
        ("fast", {"speed": "fast", "version": "7"}),
        ("turbo", {"speed": "turbo", "version": "7"}),
        ("relaxed", {"speed": "fast", "version": "7"}),
        ("draft", {"draft": True, "version": "7"}),
    ],
)
def test_apixo_speeds(speed: str, params: dict) -> None:
    assert apixo_prompt("a cat", {"speed": speed, "version": "v7"}).params == params


def test_apixo_draft_needs_v7() -> None:
    with pytest.raises(PromptError, match="`--draft` is not compatible with `--version 6.1`"):
        apixo_prompt("a cat", {"speed": "draft"})


def test_apixo_fields_win_over_em_dash_parameters() -> None:
    parsed = apixo_prompt("a cat —ar 1:2 —s 900", {"aspect_ratio": "16:9"})
    assert parsed.params == {"ar": "16:9", "stylize": 900}


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"stylization": 1001}, "`--stylize` must be between 0 and 1000"),
        ({"variety": 101}, "`--chaos` must be between 0 and 100"),
        ({"weirdness": -1}, "`--weird` must be between 0 and 3000"),
        ({"variety": 1.5}, "`--chaos` expects an integer"),
        ({"variety": True}, "`--chaos` expects an integer"),
        ({"aspect_ratio": "16 : 9"}, "Invalid aspect ratio `16 : 9`"),
        ({"aspect_ratio": "{1:1, 2:1}"}, "Invalid aspect ratio"),
        ({"aspect_ratio": "1.5"}, "Invalid aspect ratio `1.5`"),
        ({"version": "v5"}, "`version` must be one of v6, v6.1, v7, niji 6, niji 7"),
        ({"speed": "slow"}, "`speed` must be one of fast, turbo, draft, relaxed"),
    ],
)
def test_apixo_field_errors(fields: dict, message: str) -> None:
    with pytest.raises(PromptError, match=message.replace("{", r"\{").replace("}", r"\}")):
        apixo_prompt("a cat", fields)


def test_apixo_absent_fields() -> None:
    assert apixo_prompt("a cat", {"aspect_ratio": None, "variety": "", "speed": None}).params == {}
    assert apixo_prompt("a cat", None).params == {}


# kie (seed 003) ------------------------------------------------------------------------------
def test_kie_fields_become_parameters() -> None:
    parsed = kie_prompt(
        "a fighter jet in the sky",
        {
            "aspectRatio": "16:9",
            "version": "7",
            "variety": 10,
            "stylization": 1,
            "weirdness": 1,
            "speed": "relaxed",
        },
    )
    assert parsed.params == {
        "ar": "16:9",
        "version": "7",
        "chaos": 10,
        "stylize": 1,
        "weird": 1,
        "speed": "relax",
    }
    assert parsed.effective_model == "7"


@pytest.mark.parametrize(
    "version,model",
    [
        ("7", "7"),
        ("6.1", "6.1"),
        ("6", "6"),
        ("5.2", "5.2"),
        ("5.1", "5.1"),
        ("niji6", "niji 6"),
        ("niji7", "niji 7"),
    ],
)
def test_kie_versions(version: str, model: str) -> None:
    assert kie_prompt("a cat", {"version": version}).effective_model == model


def test_kie_default_is_v7_and_prompt_params_apply() -> None:
    parsed = kie_prompt("a cat --ar 3:2 --v 6", {})
    assert parsed.params == {"ar": "3:2", "version": "6"}
    assert kie_prompt("a cat", {}).effective_model == "7"


def test_kie_fields_win() -> None:
    parsed = kie_prompt(
        "a cat --ar 3:2 --c 50 --v 6 --fast",
        {"aspectRatio": "1:1", "variety": 5, "version": "niji6", "speed": "turbo"},
    )
    assert parsed.params == {"ar": "1:1", "chaos": 5, "niji": "6", "speed": "turbo"}
    assert parsed.warnings == []


def test_kie_ow_with_and_without_oref() -> None:
    parsed = kie_prompt(f"a knight --oref {IMG}", {"ow": 500})
    assert parsed.params == {"oref": IMG, "ow": 500}
    parsed = kie_prompt("a knight", {"ow": 500})
    assert parsed.params == {}
    assert parsed.warnings == ["orphan_parameter_dropped"]


@pytest.mark.parametrize(
    "fields,code,message",
    [
        ({"stylization": 2000}, "E_RANGE", "`--stylize` must be between 0 and 1000"),
        ({"ow": 0}, "E_RANGE", "`--ow` must be between 1 and 1000"),
        ({"weirdness": "lots"}, "E_TYPE", "`--weirdness`"[:0] + "`--weird` expects an integer"),
        ({"aspectRatio": "21:0"}, "E_ASPECT", "Invalid aspect ratio `21:0`"),
        ({"version": "8"}, "E_ENUM", "`version` must be one of 7, 6.1, 6, 5.2, 5.1, niji6, niji7"),
        ({"speed": "relax"}, "E_ENUM", "`speed` must be one of relaxed, fast, turbo"),
    ],
)
def test_kie_field_errors(fields: dict, code: str, message: str) -> None:
    with pytest.raises(PromptError) as info:
        kie_prompt("a cat", fields)
    assert info.value.code == code
    assert message in info.value.message


def test_kie_relaxed_speed_keeps_relax_rules() -> None:
    with pytest.raises(PromptError) as info:
        kie_prompt("a cat --repeat 2", {"speed": "relaxed"})
    assert info.value.code == "E_RELAX"


# grid size and accessors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ar,size",
    [
        ("1:1", (1024, 1024)),
        ("4:3", (1232, 928)),
        ("3:4", (928, 1232)),
        ("3:2", (1344, 896)),
        ("2:3", (896, 1344)),
        ("16:9", (1456, 816)),
        ("9:16", (816, 1456)),
        ("6:5", (1200, 992)),
        ("5:6", (992, 1200)),
        ("2:1", (1536, 768)),
        ("1:2", (768, 1536)),
        ("21:9", (1680, 720)),
        ("9:21", (720, 1680)),
        ("7:3", (1680, 720)),
        ("32:18", (1456, 816)),
    ],
)
def test_grid_size_table(ar: str, size: tuple[int, int]) -> None:
    assert grid_size(ar) == size


@pytest.mark.parametrize("ar", ["5:4", "7:4", "14:1", "1:14", "13:7", "3:1", "10:3", "11:10", "123:457"])
def test_grid_size_fallback(ar: str) -> None:
    w, h = grid_size(ar)
    a, b = map(int, ar.split(":"))
    assert w % 16 == 0 and h % 16 == 0
    assert 1_121_000 <= w * h <= 1_239_000
    assert grid_size(f"{b}:{a}") == (h, w)
    # closest ratio: no other in-band multiple-of-16 pair with the same height is closer
    assert abs(w / h - a / b) <= abs((w + 16) / h - a / b) and abs(w / h - a / b) <= abs((w - 16) / h - a / b)


@pytest.mark.parametrize("bad", ["", "16", "0:1", "1.5:1", "a:b", "1:0"])
def test_grid_size_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        grid_size(bad)


def test_accessors_defaults() -> None:
    p = parse("a cat")
    assert (p.aspect, p.size, p.seed, p.negative_terms) == ("1:1", (1024, 1024), None, [])
    assert (p.stylize, p.chaos, p.weird, p.quality, p.stop, p.exp) == (100, 0, 0, 1, 100, 0)
    assert (p.raw, p.tile, p.draft, p.is_video, p.speed, p.repeat) == (False, False, False, False, None, 1)
    assert (p.image_weight, p.style_refs, p.style_weight, p.style_version) == (1, [], 100, 6)
    assert (p.omni_ref, p.omni_weight, p.character_refs, p.character_weight) == (None, 100, [], 100)
    assert p.profiles is None and not p.is_niji
    assert parse("a cat", "6").style_version == 4


def test_accessors_values() -> None:
    p = parse(
        f"{IMG} a cat --ar 9:16 --seed 9 --no dogs, rain --s 750 --c 20 --w 5 --q 2 --style raw --tile "
        f"--iw 2 --sref 1 --sw 300 --sv 4 --oref {IMG2} --ow 80 --exp 25 --fast --p --r 2"
    )
    assert (p.aspect, p.size, p.seed, p.negative_terms) == ("9:16", (816, 1456), 9, ["dogs", "rain"])
    assert (p.stylize, p.chaos, p.weird, p.quality, p.raw, p.tile) == (750, 20, 5, 2, True, True)
    assert (p.image_weight, p.style_refs, p.style_weight, p.style_version) == (
        2,
        [{"ref": "1", "weight": 1}],
        300,
        4,
    )
    assert (p.omni_ref, p.omni_weight, p.exp, p.speed, p.profiles, p.repeat) == (IMG2, 80, 25, "fast", [], 2)
    assert p.job_count == 2 and len(p.variants) == 2 and p.variants[0].seed == 9
    assert p.warnings == []
    assert parse("a cat --seed 1 --turbo").warnings == ["seed_unreliable_in_turbo"]


def test_version_context_forms() -> None:
    for form, model in [("v7", "7"), ("6.0", "6"), ("niji6", "niji 6"), ("Niji 7", "niji 7"), ("5.1", "5.1")]:
        assert parse("a cat", form).effective_model == model
    with pytest.raises(PromptError) as info:
        parse("a cat", "banana")
    assert info.value.code == "E_CONTEXT"


def test_prompt_error_pickles() -> None:
    import pickle

    err = PromptError("Invalid prompt: x", "E_EMPTY", 7)
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.code, back.stage) == ("Invalid prompt: x", "E_EMPTY", 7)
    assert isinstance(back, ValueError)


def test_to_dict_is_a_copy() -> None:
    p = parse("a cat --no dog --sref 1")
    d = p.to_dict()
    d["params"]["no"].append("x")
    d["params"]["sref"][0]["weight"] = 9
    assert p.params == {"no": ["dog"], "sref": [{"ref": "1", "weight": 1}]}
