"""midjourney-proxy's Task object (fetch, lists, notifyHook) and its Discord buttons.

Which buttons a task shows is the core's answer (`core.followups.offered`); this module only
names each offer as Discord does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from openmj.core import words
from openmj.core.followups import Followup, extendable, is_upscaled, offered
from openmj.core.operations import VALIDATORS
from openmj.core.tasks import ImageResult, Operation, Speed, Status, Task
from openmj.dialects.common import UNRENDERABLE, Context, media_url, unix_ms
from openmj.dialects.mjproxy.custom_id import MAKE_SQUARE_PCT
from openmj.dialects.mjproxy.wire import DIALECT

_ACTIONS = {
    Operation.IMAGINE: "IMAGINE",
    Operation.UPSCALE: "UPSCALE",
    Operation.VARIATION: "VARIATION",
    Operation.REMIX: "VARIATION",
    Operation.ZOOM: "ZOOM",
    Operation.PAN: "PAN",
    Operation.MAKE_SQUARE: "ZOOM",  # an Outpaint (MJ::Outpaint::100) on Discord
    Operation.INPAINT: "INPAINT",
    Operation.EDIT: "EDIT",
    Operation.UPLOAD_PAINT: "EDIT",
    Operation.RETEXTURE: "RETEXTURE",
    Operation.REROLL: "REROLL",
    Operation.BLEND: "BLEND",
    Operation.VIDEO: "VIDEO",
    Operation.VIDEO_EXTEND: "VIDEO_EXTEND",
    Operation.VIDEO_UPSCALE: "UPSCALE",  # TAO: video_virtual_upscale is an UPSCALE of a video
    Operation.DESCRIBE: "DESCRIBE",
    Operation.SHORTEN: "SHORTEN",
}
WORD_OPERATIONS = (Operation.DESCRIBE, Operation.SHORTEN)
#: core status → Task.status. Cancelled is FAILURE, as TAO's own cancel writes it: relays treat
#: only SUCCESS and FAILURE as final (new-api keeps polling CANCEL and never refunds it).
STATUS = {
    Status.PENDING: "SUBMITTED",
    Status.PROCESSING: "IN_PROGRESS",
    Status.COMPLETED: "SUCCESS",
    Status.FAILED: "FAILURE",
    Status.CANCELLED: "FAILURE",
    Status.MODAL: "MODAL",
}
_MODES = {Speed.FAST: "FAST", Speed.TURBO: "TURBO", Speed.RELAX: "RELAX", Speed.DRAFT: "FAST"}


class TaskJson(BaseModel):
    """The Task object (documentation model)."""

    model_config = ConfigDict(extra="allow")
    id: str
    action: str
    status: str
    progress: str
    prompt: str
    imageUrl: str
    buttons: list[dict[str, Any]]


def task_action(task: Task) -> str:
    if is_upscaled(task):
        return "UPSCALE_HD"  # TAO's name for Upscale (Subtle/Creative)
    return _ACTIONS.get(task.operation, "ACTION")


def own(task: Task, name: str) -> Any:
    """A field this dialect stored with the task (other dialects' bodies mean other things)."""
    return task.request.get(name) if task.dialect == DIALECT else None


def model_of(task: Task) -> str:
    return str(task.spec.get("prompt", {}).get("effective_model") or "7")


def bot_type(task: Task) -> str:
    model = task.spec.get("prompt", {}).get("effective_model") or own(task, "botType") or ""
    return "NIJI_JOURNEY" if str(model).upper().startswith("NIJI") else "MID_JOURNEY"


def display_prompt(task: Task) -> str:
    return task.prompt or str(task.request.get("prompt") or "")


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _upscale_ids(task: Task) -> dict[Followup, tuple[str, str]]:
    """(customId name, label) of the Upscale buttons for the task's model version."""
    major = model_of(task).removeprefix("niji ").split(".")[0]
    if major.isdigit() and int(major) >= 6:
        v = f"v{major}"
        return {
            Followup.UPSCALE_SUBTLE: (f"upsample_{v}_2x_subtle", "Upscale (Subtle)"),
            Followup.UPSCALE_CREATIVE: (f"upsample_{v}_2x_creative", "Upscale (Creative)"),
        }
    return {
        Followup.UPSCALE_SUBTLE: ("upsample_v5_2x", "Upscale (2x)"),
        Followup.UPSCALE_CREATIVE: ("upsample_v5_4x", "Upscale (4x)"),
    }


_PAN_EMOJI = (("pan_left", "⬅️"), ("pan_right", "➡️"), ("pan_up", "⬆️"), ("pan_down", "⬇️"))


#: the buttons under one image: customId template ({h} = the task id), label, emoji
_SINGLE = {
    Followup.VARY_SUBTLE: ("MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
    Followup.VARY_STRONG: ("MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
    Followup.VARY_REGION: ("MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
    Followup.ZOOM_OUT_2X: ("MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
    Followup.ZOOM_OUT_1_5X: ("MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
    Followup.ZOOM_CUSTOM: ("MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
    Followup.MAKE_SQUARE: (f"MJ::Outpaint::{MAKE_SQUARE_PCT}::1::{{h}}::SOLO", "Make Square", "↔️"),
}


_MOTIONS = (("high", "High"), ("low", "Low"))


def _video_buttons(task: Task, offer: Followup) -> list[dict[str, Any]]:
    h = task.id
    if offer is Followup.ANIMATE:
        return [
            _button(f"MJ::JOB::animate_{m}::1::{h}::SOLO", f"Animate ({w} motion)", "🎞️") for m, w in _MOTIONS
        ]
    out = []
    for i in range(1, len(task.results) + 1):
        if offer is Followup.EXTEND and extendable(task, i - 1):
            out += [
                _button(f"MJ::JOB::animate_{m}_extend::{i}::{h}::SOLO", f"Extend ({w}) {i}", "🎞️")
                for m, w in _MOTIONS
            ]
        elif offer is Followup.VIDEO_UPSCALE:
            out.append(_button(f"MJ::JOB::video_virtual_upscale::{i}::{h}::SOLO", f"Upscale {i}", "⬆️"))
    return out


def keycap(n: int) -> str:
    """1️⃣ … 9️⃣: how Discord numbers the prompts of /describe and /shorten."""
    return f"{n}\ufe0f\u20e3"


def _word_buttons(task: Task, offer: Followup) -> list[dict[str, Any]]:
    if offer is Followup.DESCRIBE_AGAIN:
        return [_button("MJ::Picread::Retry", emoji="🔄")]
    kind = "PicReader" if offer is Followup.IMAGINE_DESCRIBED else "PromptAnalyzer"
    count = len((task.output or {}).get("prompts", []))
    return [_button(f"MJ::Job::{kind}::{i}", str(i)) for i in range(1, count + 1)]


def numbered(prompts: list[str]) -> str:
    return "\n\n".join(f"{keycap(i)} {p}" for i, p in enumerate(prompts, 1))


def shorten_text(task: Task) -> str:
    """The /shorten answer: the prompt with its important words in bold and the ones that do
    nothing struck through, then the five shortened prompts."""
    marked = []
    for token in words.ranked(task.output or {}):
        if token.score >= IMPORTANT:
            marked.append(f"**{token.word}**")
        elif token.score < NEGLIGIBLE:
            marked.append(f"~~{token.word}~~")
        else:
            marked.append(token.word)
    prompts = "\n".join(f"{keycap(i)} {p}" for i, p in enumerate((task.output or {}).get("prompts", []), 1))
    return (
        f"**IMPORTANT TOKENS**\n{' '.join(marked)}\n\n**Shortened prompts**\n{prompts}\n\n"
        "Click on a button to imagine one of the shortened prompts"
    )


IMPORTANT, NEGLIGIBLE = 0.5, 0.15  # a word's share of the largest effect: bold, struck through


def _words_fields(context: Context, task: Task, out: dict[str, Any]) -> None:
    """A finished describe (four prompts, the image described) or shorten (the analysis)."""
    if task.operation is Operation.DESCRIBE:
        text = numbered((task.output or {}).get("prompts", []))
        out |= {"prompt": text, "promptEn": text, "description": f"/describe {task.id}.png"}
        out["properties"] = {"finalPrompt": text, "finalZhPrompt": ""}
        if task.results:
            image = task.results[0]
            out["imageUrl"] = media_url(context.signer, task, image)
            out["imageUrls"] = [{"url": out["imageUrl"]}]
            out["width"], out["height"] = image.width, image.height
    else:
        text = shorten_text(task)
        out |= {"description": text}
        out["properties"] = {"finalPrompt": text, "finalZhPrompt": ""}


def _buttons_for(task: Task, offer: Followup) -> list[dict[str, Any]]:
    h = task.id  # the "job hash": openmj's task id stands in for Discord's message hash
    if offer in (Followup.ANIMATE, Followup.EXTEND, Followup.VIDEO_UPSCALE):
        return _video_buttons(task, offer)
    if offer in (Followup.IMAGINE_DESCRIBED, Followup.DESCRIBE_AGAIN, Followup.IMAGINE_SHORTENED):
        return _word_buttons(task, offer)
    if offer is Followup.UPSCALE_SEPARATE:
        return [_button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)]
    if offer is Followup.VARY_GRID:
        return [_button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)]
    if offer is Followup.REROLL:
        return [_button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄")]
    if offer in (Followup.UPSCALE_SUBTLE, Followup.UPSCALE_CREATIVE):
        name, label = _upscale_ids(task)[offer]
        return [_button(f"MJ::JOB::{name}::1::{h}::SOLO", label)]
    if offer is Followup.PAN:
        return [_button(f"MJ::JOB::{name}::1::{h}::SOLO", emoji=emoji) for name, emoji in _PAN_EMOJI]
    template, label, emoji = _SINGLE[offer]
    return [_button(template.format(h=h), label, emoji)]


def buttons(task: Task, can_animate: bool = False) -> list[dict[str, Any]]:
    offers = offered(task, can_inpaint=Operation.INPAINT in VALIDATORS, can_animate=can_animate)
    return [b for offer in offers for b in _buttons_for(task, offer)]


def image_seed(task: Task) -> int:
    """The seed of the task's image; for a grid the first image's (MJ's grid seed)."""
    if task.results and task.results[0].seed is not None:
        return task.results[0].seed
    return task.seed


_PROGRESS = {Status.PENDING: "0%", Status.COMPLETED: "100%", Status.MODAL: "0%"}


def render(context: Context, task: Task) -> dict[str, Any]:
    """The Task object of fetch, list and notifyHook."""
    prompt = display_prompt(task)
    english = task.final_prompt if task.spec.get("translation") else prompt  # what the model read
    status = STATUS.get(task.status, "FAILURE")
    progress = f"{task.progress}%" if task.status is Status.PROCESSING else _PROGRESS.get(task.status, "")
    # TAO keeps the submit answer as the description (its own example: "Submit success")
    description = "Waiting for window confirm" if task.status is Status.MODAL else "Submit success"
    out: dict[str, Any] = {
        "id": task.id,
        "action": task_action(task),
        "customId": own(task, "customId") or "",
        "botType": bot_type(task),
        "prompt": prompt,
        "promptEn": english,
        "description": description,
        "state": own(task, "state") or "",
        "submitTime": unix_ms(task.created_at),
        "startTime": unix_ms(task.started_at),
        "finishTime": unix_ms(task.finished_at),
        "imageUrl": "",
        "imageUrls": [],
        "status": status,
        "progress": progress,
        "failReason": (task.error_message or task.error_code or "") if status == "FAILURE" else "",
        "buttons": buttons(task, context.service.caps.video),
        "seed": None,
        "mode": _MODES.get(task.speed, "FAST"),
        "width": None,
        "height": None,
        "parentId": task.parent_id or "",
        "maskBase64": "",
        "properties": {"finalPrompt": english, "finalZhPrompt": prompt if english != prompt else ""},
    }
    if task.status is Status.COMPLETED and task.operation in WORD_OPERATIONS:
        _words_fields(context, task, out)
    elif task.status is Status.COMPLETED and task.results and task.results[0].is_video:
        _video_fields(context, task, out)
    elif task.status is Status.COMPLETED and task.results:
        shown: ImageResult = task.grid or task.results[0]  # imageUrl is the grid of a 4-image job
        out["imageUrl"] = media_url(context.signer, task, shown)
        out["imageUrls"] = [{"url": media_url(context.signer, task, im)} for im in task.results]
        out["width"], out["height"] = shown.width, shown.height
        out["seed"] = str(image_seed(task))
    return out


def _video_fields(context: Context, task: Task, out: dict[str, Any]) -> None:
    """TAO's video result: `videoUrl` (the first clip), `videoUrls[{url, thumbnail}]`, and the
    thumbnails as `imageUrl`/`imageUrls`."""
    clips = []
    for clip in task.results:
        thumb = media_url(context.signer, task, clip._replace(name=clip.thumbnail)) if clip.thumbnail else ""
        clips.append({"url": media_url(context.signer, task, clip), "thumbnail": thumb})
    out["videoUrl"] = clips[0]["url"]
    out["videoUrls"] = clips
    out["imageUrl"] = clips[0]["thumbnail"]
    out["imageUrls"] = [{"url": c["thumbnail"]} for c in clips]
    out["width"], out["height"] = task.results[0].width, task.results[0].height
    out["seed"] = str(image_seed(task))


def placeholder(task: Task) -> dict[str, Any]:
    """A task whose stored data cannot be rendered, in a list."""
    return {"id": task.id, "status": "FAILURE", "progress": "", "failReason": UNRENDERABLE, "buttons": []}


def callback_payload(context: Context, task: Task, event: str) -> dict[str, Any]:
    """The notifyHook body: the Task JSON at the moment of `event`. A progress event is rendered
    with its own percentage: the task may have moved on before delivery."""
    body = render(context, task)
    if event.startswith("progress:"):
        pct = event.partition(":")[2]
        body |= {"status": "IN_PROGRESS", "progress": f"{int(pct) if pct.isdigit() else 0}%"}
        body |= {"imageUrl": "", "imageUrls": [], "buttons": [], "failReason": ""}
    elif event == "started":
        body |= {"status": "IN_PROGRESS", "progress": "0%"}
    return body
