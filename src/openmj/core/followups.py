"""What a finished task offers next — Midjourney's buttons as core rules, for every face to show.

midjourney-proxy renders these as Discord buttons (customIds), the studio as its own buttons;
each offer is something `core.operations` will accept for that task, so a face never shows a
button the core would refuse.
"""

from __future__ import annotations

import enum

from openmj.core.tasks import Operation, Speed, Status, Task
from openmj.core.video import EXTEND_SECONDS, MAX_SECONDS, VIDEO_OPERATIONS


class Followup(enum.StrEnum):
    # under a 2×2 grid (one per image, except reroll)
    UPSCALE_SEPARATE = "upscale_separate"  # U1–U4: image N on its own (V5+ U does not upscale)
    VARY_GRID = "vary_grid"  # V1–V4
    REROLL = "reroll"
    # under one image
    UPSCALE_SUBTLE = "upscale_subtle"
    UPSCALE_CREATIVE = "upscale_creative"
    VARY_SUBTLE = "vary_subtle"
    VARY_STRONG = "vary_strong"
    VARY_REGION = "vary_region"
    ZOOM_OUT_2X = "zoom_out_2x"
    ZOOM_OUT_1_5X = "zoom_out_1_5x"
    ZOOM_CUSTOM = "zoom_custom"
    PAN = "pan"  # left, right, up, down
    MAKE_SQUARE = "make_square"
    ANIMATE = "animate"  # high and low motion (with a video model)
    # under each clip of a video
    EXTEND = "extend"  # high and low motion, while the clip is under the 21 s cap
    VIDEO_UPSCALE = "video_upscale"  # an SD clip to HD
    # under words (core/words.py)
    IMAGINE_DESCRIBED = "imagine_described"  # imagine prompt 1–4 of a describe
    DESCRIBE_AGAIN = "describe_again"  # describe the same image with a new seed
    IMAGINE_SHORTENED = "imagine_shortened"  # imagine prompt 1–5 of a shorten


#: what Remix mode edits on Discord (Vary, Reroll, Pan, Zoom Out, Make Square; not Upscale)
REMIXABLE = frozenset(
    {Operation.VARIATION, Operation.REROLL, Operation.PAN, Operation.ZOOM, Operation.MAKE_SQUARE}
)
#: operations a Reroll repeats (core.operations refuses to reroll any other)
REROLLABLE = frozenset({Operation.IMAGINE, Operation.REROLL})


def is_upscaled(task: Task) -> bool:
    """An Upscale (Subtle/Creative) result, as opposed to an image separated from its grid: it
    cannot be upscaled again."""
    return task.operation is Operation.UPSCALE and task.spec.get("options", {}).get("factor", 1) > 1


def followup_speed(parent: Task) -> Speed:
    """An action runs in its source's mode, as on Discord; a draft's actions run at fast speed
    (Midjourney re-renders drafts at full quality when they are varied or upscaled)."""
    return Speed.FAST if parent.speed is Speed.DRAFT else parent.speed


def offered(task: Task, *, can_inpaint: bool = True, can_animate: bool = False) -> list[Followup]:
    """The follow-ups a task offers, in Discord's order; none until it is completed."""
    if task.status is not Status.COMPLETED:
        return []
    if task.operation is Operation.DESCRIBE:
        return [Followup.IMAGINE_DESCRIBED, Followup.DESCRIBE_AGAIN]
    if task.operation is Operation.SHORTEN:
        return [Followup.IMAGINE_SHORTENED]
    if task.operation in VIDEO_OPERATIONS:
        return _video_offers(task) if can_animate else []
    if len(task.results) == 4:
        out = [Followup.UPSCALE_SEPARATE]
        if task.operation in REROLLABLE:
            out.append(Followup.REROLL)
        return [*out, Followup.VARY_GRID]
    if len(task.results) != 1:
        return []
    out = [] if is_upscaled(task) else [Followup.UPSCALE_SUBTLE, Followup.UPSCALE_CREATIVE]
    out += [Followup.VARY_SUBTLE, Followup.VARY_STRONG]
    if can_inpaint:
        out.append(Followup.VARY_REGION)
    out += [Followup.ZOOM_OUT_2X, Followup.ZOOM_OUT_1_5X, Followup.ZOOM_CUSTOM, Followup.PAN]
    image = task.results[0]
    if image.width != image.height:
        out.append(Followup.MAKE_SQUARE)
    if can_animate:
        out.append(Followup.ANIMATE)
    return out


def extendable(task: Task, index: int) -> bool:
    clip = task.results[index]
    return clip.seconds + EXTEND_SECONDS <= MAX_SECONDS + 0.5  # the 4k+1 frame rounding


def _video_offers(task: Task) -> list[Followup]:
    out = []
    if any(extendable(task, i) for i in range(len(task.results))):
        out.append(Followup.EXTEND)
    if task.spec.get("video", {}).get("resolution") != "hd":
        out.append(Followup.VIDEO_UPSCALE)
    return out
