"""Smoke tests of the public interface (the table-driven suite is test_prompt_cases.py)."""

import pytest

from openmj.core.prompt import ParsedPrompt, PromptError, grid_size, normal_form, parse


def test_interface_round_trip() -> None:
    parsed = parse("a cat --ar 16:9 --seed 7 --no dog, cat toy --v 7")
    assert isinstance(parsed, ParsedPrompt)
    assert parsed.aspect == "16:9"
    assert parsed.seed == 7
    assert parsed.negative_terms == ["dog", "cat toy"]
    assert parsed.size == (1456, 816)
    assert parsed.to_dict()["ok"] is True


def test_error_type_and_normal_form() -> None:
    with pytest.raises(PromptError) as info:
        parse("a cat --chaos 101")
    assert info.value.code == "E_RANGE"
    assert normal_form("a cat --chaos 101") == {
        "ok": False,
        "error": "Invalid parameter: `--chaos` must be between 0 and 100",
        "error_code": "E_RANGE",
    }


def test_grid_size_table() -> None:
    assert grid_size("1:1") == (1024, 1024)
    assert grid_size("21:9") == (1680, 720)
    assert grid_size("9:16") == (816, 1456)
