"""The task spec: everything a worker needs, fixed at submit (`core.operations.validate_request`).

Stored as JSON with the task, so a task re-run after a crash does exactly the same work. Every
key is optional in the type because each operation fills only its own parts (the table in
`core/operations.py` says which); readers use `.get`.
"""

from __future__ import annotations

from typing import Any, TypedDict


class PromptSpec(TypedDict, total=False):
    """The parsed prompt (docs/prompt.md, "Normal form") the engine renders."""

    text: str
    image_urls: list[str]  # image prompts written in the prompt
    params: dict[str, Any]  # --ar, --s, --seed, --no … as the parser normalised them
    segments: list[dict[str, Any]]  # `::` multi-prompt parts with their weights
    effective_model: str  # "7", "niji 7", …
    warnings: list[str]


class SrefItem(TypedDict):
    ref: str  # an image URL, or a style code (digits)
    weight: float


class RefsSpec(TypedDict, total=False):
    """Reference images the worker fetches before the engine runs."""

    image_prompts: list[str]
    iw: float | None
    sref: list[SrefItem]
    sw: int | None
    oref: str
    ow: int | None


class MaskSpec(TypedDict, total=False):
    url: str  # a black/white image (http(s) or data:), white = repaint
    areas: list[dict[str, Any]]  # polygons: {width, height, points: [x1, y1, …]}


class OptionsSpec(TypedDict, total=False):
    """Operation options (validated, with defaults applied)."""

    mode: str  # upscale: subtle | creative
    factor: int  # upscale: 1 (separate from the grid), 2, 4
    strength: str  # vary: subtle | strong
    remix: bool
    scale: float  # zoom, pan
    direction: str  # pan: up | down | left | right
    mask: MaskSpec | None
    canvas: dict[str, int]  # editor: {width, height}
    img_pos: dict[str, int]  # editor: {width, height, x, y}
    image_url: str  # the uploaded image of upload-paint, retexture, remove-bg
    image_urls: list[str]  # blend
    dimensions: str  # blend: 1:1 | 2:3 | 3:2
    reroll_of: str
    watermark: str  # kie waterMark: drawn on every output
    written: str  # shorten: the prompt as parsed, whose links and parameters every option keeps


class SourceSpec(TypedDict):
    """The finished image an action starts from."""

    task_id: str
    index: int
    name: str  # its file name in the media store
    width: int
    height: int
    seed: int | None
    operation: str


class ModalSpec(TypedDict, total=False):
    """A midjourney-proxy action waiting for its window's input (Custom Zoom, Vary Region)."""

    params: dict[str, Any]
    index_naming: list[Any]  # [wire field name, first number] for messages


class VideoSpec(TypedDict, total=False):
    """A video task (core/video.py): what to animate and how; sizes fixed at submit."""

    start_url: str  # animate an uploaded image (http(s) or data:); else `source` is the start
    end_url: str  # --end / endImage: the clip ends on this image
    loop: bool  # the clip ends on its start image
    motion: str  # low | high
    batch: int  # clips: 1, 2 or 4
    resolution: str  # sd (480p class) | hd (720p class)
    width: int  # output frame size, from the start image's aspect ratio
    height: int
    seconds: float  # animate: the clip length; extend: the seconds added
    manual: bool  # extend with a new prompt (Extend Manual) rather than the source's


class TranslationSpec(TypedDict, total=False):
    """A prompt translated before parsing (core/prompt/translation.py): what the model read."""

    language: str  # the detected language (ISO 639-1)
    original: str  # the prompt as the client sent it
    prompt: str  # the English prompt that was parsed
    pieces: list[list[str]]  # [source words, English] for each translated piece


class UpstreamSpec(TypedDict, total=False):
    """Where a relayed task's source lives (docs/relay.md): its provider and that provider's id."""

    provider: str
    task_id: str
    index: int  # the source image, 0-based


class Spec(TypedDict, total=False):
    prompt: PromptSpec
    options: OptionsSpec
    refs: RefsSpec
    source: SourceSpec
    modal: ModalSpec
    video: VideoSpec
    version: str  # the Midjourney version it was asked for ("7", "8.1", "niji 7"): routing, V8 rules
    quality: str  # EvoLink V8.x top-level quality: "hd" renders the long side twice as large
    translation: TranslationSpec  # the prompt was translated to English before it was parsed
    upstream_parent: UpstreamSpec  # a relayed follow-up: it goes to the provider that made its source
