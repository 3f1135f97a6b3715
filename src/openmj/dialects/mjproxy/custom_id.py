"""midjourney-proxy button ids (customId) → core actions: `MJ::<KIND>::…::<hash>[::SOLO]`.

The hash is not used: `taskId` names the task (hashes are Discord message hashes, which openmj
replaces by task ids). docs/api/midjourney-proxy.md lists every id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from openmj.core.tasks import Operation
from openmj.dialects.common import invalid
from openmj.dialects.mjproxy.wire import not_supported

PAN_SCALE = 1.5  # Midjourney pans add ≈ +50 % of the side; not user-controllable
OUTPAINT = {"50": 2.0, "75": 1.5}  # MJ::Outpaint::50 = Zoom Out 2x, ::75 = Zoom Out 1.5x
MAKE_SQUARE_PCT = "100"  # MJ::Outpaint::100 = Make Square (the Discord button's own id)
#: the buttons under words: which task's prompts they imagine
WORD_BUTTONS = {"PicReader": Operation.DESCRIBE, "PromptAnalyzer": Operation.SHORTEN}


@dataclass
class Action:
    """A button press translated to the core: operation, 1-based image number, params."""

    operation: Operation
    index: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    modal: bool = False  # needs /mj/submit/modal before it can run (code 21)


_UPSAMPLE_HD = re.compile(r"upsample_v\w+?_(?P<factor>[24])x(?:_(?P<mode>subtle|creative))?")
_ANIMATE = re.compile(r"animate_(?P<motion>high|low)(?P<extend>_extend)?")
_PANS = {"pan_left": "left", "pan_right": "right", "pan_up": "up", "pan_down": "down"}


def _number(text: str, custom_id: str) -> int:
    if not text.isdigit():
        raise invalid(f"Invalid customId '{custom_id}': '{text}' is not an image number", "customId")
    return int(text)


def parse_custom_id(custom_id: str) -> Action:
    """`MJ::<KIND>::…::<hash>[::SOLO]` → Action. The hash is not used: `taskId` names
    the task (hashes are Discord message hashes, which openmj replaces by task ids)."""
    parts = custom_id.strip().split("::")
    if len(parts) < 3 or parts[0] != "MJ":
        raise invalid(f"Invalid customId '{custom_id}': expected MJ::<kind>::…", "customId")
    kind = parts[1]
    if kind == "JOB":
        name = parts[2]
        n = _number(parts[3], custom_id) if len(parts) > 3 else 1
        if name == "upsample":  # U1–U4: separate image N from the grid (V5+ U does no upscale)
            return Action(Operation.UPSCALE, n, {"factor": 1, "mode": "subtle"})
        if name == "variation":  # V1–V4: High Variation Mode is Midjourney's default
            return Action(Operation.VARIATION, n, {"strength": "strong"})
        if name in ("low_variation", "high_variation"):
            return Action(Operation.VARIATION, n, {"strength": "subtle" if name[0] == "l" else "strong"})
        if name == "reroll":
            return Action(Operation.REROLL, 1)
        if m := _UPSAMPLE_HD.fullmatch(name):  # Upscale (Subtle/Creative), V5's 2x/4x
            return Action(Operation.UPSCALE, n, {"factor": int(m["factor"]), "mode": m["mode"] or "subtle"})
        if name in _PANS:
            return Action(Operation.PAN, n, {"direction": _PANS[name], "scale": PAN_SCALE})
        if m := _ANIMATE.fullmatch(name):  # Animate / Extend, high or low motion
            operation = Operation.VIDEO_EXTEND if m["extend"] else Operation.VIDEO
            return Action(operation, n, {"motion": m["motion"]})
        if name == "video_virtual_upscale":
            return Action(Operation.VIDEO_UPSCALE, n)
    elif kind == "Outpaint" and len(parts) >= 4:
        n = _number(parts[3], custom_id)
        if parts[2] in OUTPAINT:
            return Action(Operation.ZOOM, n, {"scale": OUTPAINT[parts[2]]})
        if parts[2] == MAKE_SQUARE_PCT:
            return Action(Operation.MAKE_SQUARE, n)
        raise invalid(f"Invalid customId '{custom_id}': Outpaint takes 50, 75 or 100", "customId")
    elif kind == "CustomZoom":  # MJ::CustomZoom::{hash} (Discord) or MJ::CustomZoom::{n}::{hash}
        n = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 1
        return Action(Operation.ZOOM, n, modal=True)
    elif kind == "Inpaint":  # Vary (Region)
        return Action(Operation.INPAINT, _number(parts[2], custom_id), modal=True)
    elif kind == "Job" and parts[2] in WORD_BUTTONS:  # MJ::Job::PicReader::N, MJ::Job::PromptAnalyzer::N
        if parts[3:4] == ["all"]:
            raise not_supported("Imagining all four prompts at once (press one of 1–4)")
        n = _number(parts[3], custom_id) if len(parts) > 3 else 0
        return Action(Operation.IMAGINE, n, {"words": WORD_BUTTONS[parts[2]]})
    elif kind == "Picread" and parts[2] == "Retry":  # describe the same image again
        return Action(Operation.DESCRIBE, 1)
    raise invalid(f"Unknown customId '{custom_id}'", "customId")


def custom_id_for(action: str, index: int, task_id: str) -> str:
    """The button id that /mj/submit/change and simple-change stand for (kept on the task)."""
    if action == "REROLL":
        return f"MJ::JOB::reroll::0::{task_id}::SOLO"
    name = "upsample" if action == "UPSCALE" else "variation"
    return f"MJ::JOB::{name}::{index}::{task_id}"
