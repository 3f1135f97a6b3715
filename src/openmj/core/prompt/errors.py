"""The parser's one error type and the exact §10 message templates.

Every wording here is normative (spec §10: tests match substrings), so messages are built only
through these helpers, never inline.
"""

from __future__ import annotations

# §10 error codes (stage numbers are the precedence order: the lowest failing stage reports).
E_PERMUTATION = "E_PERMUTATION"  # stage 1
E_LINK = "E_LINK"  # stage 2
E_UNRECOGNIZED = "E_UNRECOGNIZED"  # stage 3
E_MISSING_VALUE = "E_MISSING_VALUE"  # stage 3
E_ASPECT = "E_ASPECT"  # stage 4
E_RANGE = "E_RANGE"  # stage 4
E_ENUM = "E_ENUM"  # stage 4
E_TYPE = "E_TYPE"  # stage 4
E_VERSION = "E_VERSION"  # stage 5
E_INCOMPATIBLE = "E_INCOMPATIBLE"  # stage 6
E_SREF_SV = "E_SREF_SV"  # stage 6
E_OREF_COUNT = "E_OREF_COUNT"  # stage 6
E_IMAGE_ONLY = "E_IMAGE_ONLY"  # stage 6
E_RELAX = "E_RELAX"  # stage 6
E_EMPTY = "E_EMPTY"  # stage 7
E_VIDEO = "E_VIDEO"  # stage 7 (service code: §9 gives the message but no code)
E_SINGLE_IMAGE = "E_SINGLE_IMAGE"  # stage 7
E_REF_TEXT = "E_REF_TEXT"  # stage 7
E_WEIGHT_SUM = "E_WEIGHT_SUM"  # stage 7
E_LENGTH = "E_LENGTH"  # stage 7
# Service codes outside §10: a dialect policy refusing a parameter, an unknown version context.
E_UNSUPPORTED = "E_UNSUPPORTED"
E_CONTEXT = "E_CONTEXT"


class PromptError(ValueError):
    """A prompt Midjourney would refuse.

    ``message`` is the exact §10 wording, ``code`` the §10/§11 ``error_code``; ``stage`` is the §10
    pipeline stage (1-7) used to pick the reported error when several apply.
    """

    def __init__(self, message: str, code: str, stage: int = 7) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.stage = stage

    def __reduce__(self):  # keep code/stage across pickling (e.g. process pools)
        return (type(self), (self.message, self.code, self.stage))


def fmt_num(value: float) -> str:
    """Numbers in messages: integers without decimals (§10 E_RANGE)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def unbalanced() -> PromptError:
    return PromptError("Invalid prompt: unbalanced { }", E_PERMUTATION, 1)


def too_many_jobs(count: int | str, maximum: int) -> PromptError:
    return PromptError(
        f"Invalid prompt: permutation creates {count} jobs (maximum {maximum})", E_PERMUTATION, 1
    )


def permutation_relax() -> PromptError:
    # §10 lists it under E_PERMUTATION; it can only be seen once --relax is parsed (stage 6).
    return PromptError(
        "Invalid parameter: Permutation prompts are not available in Relax mode", E_PERMUTATION, 6
    )


def bad_link(url: str) -> PromptError:
    return PromptError(
        f"Invalid link: `{url}` is not a direct link to a .png, .gif, .webp, .jpg or .jpeg image",
        E_LINK,
        2,
    )


def unrecognized(tokens: list[str]) -> PromptError:
    listed = ", ".join(f"`{t}`" for t in tokens)
    return PromptError(f"Invalid parameter: Unrecognized parameter(s): {listed}", E_UNRECOGNIZED, 3)


def missing_value(name: str) -> PromptError:
    return PromptError(f"Invalid parameter: `{name}` requires a value", E_MISSING_VALUE, 3)


def bad_aspect(value: str) -> PromptError:
    return PromptError(f"Invalid parameter: Invalid aspect ratio `{value}`", E_ASPECT, 4)


def out_of_range(name: str, low: float, high: float) -> PromptError:
    return PromptError(
        f"Invalid parameter: `{name}` must be between {fmt_num(low)} and {fmt_num(high)}", E_RANGE, 4
    )


def not_one_of(name: str, values: tuple) -> PromptError:
    listed = ", ".join(v if isinstance(v, str) else fmt_num(v) for v in values)
    return PromptError(f"Invalid parameter: `{name}` must be one of {listed}", E_ENUM, 4)


def expects(name: str, what: str) -> PromptError:
    """E_TYPE: ``what`` is "an integer", "a number", or a service wording for list items."""
    return PromptError(f"Invalid parameter: `{name}` expects {what}", E_TYPE, 4)


def version_conflict(param: str, model_flag: str) -> PromptError:
    return PromptError(f"Invalid parameter: `{param}` is not compatible with `{model_flag}`", E_VERSION, 5)


def incompatible(param: str, other: str) -> PromptError:
    return PromptError(f"Invalid parameter: `{param}` is not compatible with `{other}`", E_INCOMPATIBLE, 6)


def requires_video(param: str) -> PromptError:
    return PromptError(f"Invalid parameter: `{param}` requires `--video`", E_INCOMPATIBLE, 6)


def sref_needs_sv() -> PromptError:
    return PromptError(
        "Invalid parameter: style reference codes and `--sref random` are only compatible with "
        "`--sv 4` and `--sv 6`",
        E_SREF_SV,
        6,
    )


def oref_count() -> PromptError:
    return PromptError("Invalid parameter: `--oref` accepts only one image", E_OREF_COUNT, 6)


def image_only(param: str) -> PromptError:
    return PromptError(
        f"Invalid parameter: `{param}` is not compatible with image-only prompts", E_IMAGE_ONLY, 6
    )


def repeat_relax() -> PromptError:
    return PromptError("Invalid parameter: `--repeat` is not available in Relax mode", E_RELAX, 6)


def empty() -> PromptError:
    return PromptError("Invalid prompt: the prompt is empty", E_EMPTY, 7)


def video_needs_image() -> PromptError:
    return PromptError("Invalid prompt: --video needs a starting image URL", E_VIDEO, 7)


def single_image() -> PromptError:
    return PromptError(
        "Invalid prompt: a single image prompt needs a text prompt (or use two or more image prompts)",
        E_SINGLE_IMAGE,
        7,
    )


def reference_needs_text(kind: str) -> PromptError:
    return PromptError(f"Invalid prompt: {kind} Reference requires a text prompt", E_REF_TEXT, 7)


def weight_sum() -> PromptError:
    return PromptError("Invalid prompt: the sum of multi-prompt weights must be positive", E_WEIGHT_SUM, 7)


def too_long() -> PromptError:
    return PromptError("Invalid prompt: prompt too long", E_LENGTH, 7)


def unsupported(param: str) -> PromptError:
    return PromptError(f"Invalid parameter: `{param}` is not supported", E_UNSUPPORTED, 3)
