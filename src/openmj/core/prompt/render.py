"""A parsed prompt written back as Midjourney prompt text: what a relay sends upstream.

`parse(prompt_text(spec))` gives back the same text, links, weights, parameters and model as
`spec` (tests/core/test_prompt_render.py checks it on a corpus), so a task asked through any API —
kie's `aspectRatio` field, APIXO's `stylization` — reaches an upstream as one prompt string.
"""

from __future__ import annotations

from typing import Any

from openmj.core.spec import PromptSpec

# canonical key → how it is written: flags by value, the rest as `--key value`
_FLAG_VALUES = {"speed", "visibility"}  # {"speed": "relax"} → --relax
_NAMES = {"version": "v", "profile": "p", "quality": "q"}


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _ref(item: Any) -> str:
    if isinstance(item, dict):
        weight = item.get("weight", 1)
        return str(item["ref"]) if weight in (1, None) else f"{item['ref']}::{_number(weight)}"
    return str(item)


def _parameter(key: str, value: Any) -> str:
    if key in _FLAG_VALUES:
        return f"--{value}"
    name = _NAMES.get(key, key)
    if value is True:
        return f"--{name}"
    if key == "no":
        return f"--no {', '.join(str(v) for v in value)}"
    if isinstance(value, list):
        return f"--{name} {' '.join(_ref(v) for v in value)}".rstrip()
    if key == "niji" and value in ("", None):
        return "--niji"
    return f"--{name} {_number(value)}"


def prompt_text(spec: PromptSpec) -> str:
    """Links, then the text (or its `::` parts), then every parameter."""
    parts = list(spec.get("image_urls") or [])
    segments = spec.get("segments")
    if segments:
        parts.append(" ".join(f"{s['text']}::{_number(s['weight'])}" for s in segments))
    elif spec.get("text"):
        parts.append(str(spec["text"]))
    params = spec.get("params") or {}
    parts += [_parameter(k, v) for k, v in params.items()]
    if "version" not in params and "niji" not in params and spec.get("effective_model"):
        model = str(spec["effective_model"])  # the account default the prompt ran under
        parts.append(f"--niji {model.split()[1]}" if model.startswith("niji ") else f"--v {model}")
    return " ".join(p for p in parts if p)
