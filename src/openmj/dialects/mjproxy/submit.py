"""midjourney-proxy's /mj/submit/* routes: imagine, video, change, simple-change, action, modal,
blend, retexture (describe and shorten are in `words`; wire-shaped refusals for what openmj
cannot do yet)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from pydantic import BaseModel

from openmj.core.accounts import ApiKey
from openmj.core.followups import REMIXABLE, followup_speed
from openmj.core.prompt import PromptError, parse
from openmj.core.prompt.modal import has_words, split_zoom
from openmj.core.tasks import ErrorCode, Operation, Speed, Task, TaskError, TaskRequest
from openmj.dialects.common import ctx, invalid, prompt_error, video_prompt_fields
from openmj.dialects.mjproxy import video
from openmj.dialects.mjproxy.custom_id import Action, custom_id_for, parse_custom_id
from openmj.dialects.mjproxy.render import bot_type, display_prompt, model_of
from openmj.dialects.mjproxy.routes import (
    accepted,
    parent_task,
    prompted,
    router,
    submit_route,
    submit_task,
    task_request,
)
from openmj.dialects.mjproxy.wire import (
    ActionBody,
    BlendBody,
    ChangeBody,
    Code,
    ImagineBody,
    ModalBody,
    RetextureBody,
    SimpleChangeBody,
    SubmitResult,
    VideoBody,
    _Body,
    authenticate,
    failure,
    forced_speed,
    image_data_uri,
    image_ref,
    not_supported,
    request_record,
    result,
    state_text,
)
from openmj.dialects.mjproxy.words import from_words
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

BLEND_DIMENSIONS = {"PORTRAIT": "2:3", "SQUARE": "1:1", "LANDSCAPE": "3:2"}


def _action_request(
    request: Request, parent: Task, action: Action, body: _Body, custom_id: str
) -> TaskRequest:
    """An action on `parent` as a TaskRequest (modal ones are completed by /mj/submit/modal)."""
    index = None if action.operation is Operation.REROLL else action.index - 1
    req = task_request(
        request,
        body,
        action.operation,
        speed=forced_speed(request) or followup_speed(parent),
        params=dict(action.params),
        parent_id=parent.id,
        parent_index=index,
        prompt_version=model_of(parent),
    )
    req.raw_request = request_record(
        body,
        customId=custom_id,
        prompt=display_prompt(parent),  # actions show the source's prompt, as Discord does
        botType=bot_type(parent),
        version=req.prompt_version,  # the context a modal's remix prompt is parsed in
    )
    return req


async def _run_action(
    request: Request, key: ApiKey, parent: Task, action: Action, body: _Body, custom_id: str, remix: bool
) -> JSONResponse:
    req = _action_request(request, parent, action, body, custom_id)
    if action.modal or remix:
        task = await ctx(request).service.open_modal(key, req)
        properties = {"finalPrompt": display_prompt(parent), "remix": True}
        return JSONResponse(result(Code.MODAL, "Waiting for window confirm", task.id, properties))
    return await submit_task(request, key, req)


@submit_route("imagine", ImagineBody)
async def imagine(request: Request, key: ApiKey, body: ImagineBody) -> JSONResponse:
    images = [image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(body.base64Array or [])]
    req = await prompted(request, body, Operation.IMAGINE, {"image_urls": images} if images else {})
    if req.parsed is not None and req.parsed.get("params", {}).get("video"):  # imagine … --video
        req.operation, req.params = Operation.VIDEO, video.imagine_params(req.parsed, images, request)
    return await submit_task(request, key, req)


@submit_route("video", VideoBody)
async def submit_video(request: Request, key: ApiKey, body: VideoBody) -> JSONResponse:
    ctx(request).service.require_capability(Operation.VIDEO)
    text = (body.prompt or "").strip()
    english = await ctx(request).service.english(text)
    parsed = video_prompt_fields(english.text)
    if video.is_extend(body):
        parent = await parent_task(request, key, body.taskId)
        req = task_request(
            request,
            body,
            Operation.VIDEO_EXTEND,
            prompt=text,
            parsed=parsed,
            speed=forced_speed(request) or followup_speed(parent),
            params={"motion": body.motion},
            parent_id=parent.id,
            parent_index=video.extend_index(body),
        )
        req.index_base = 0  # TAO numbers clips 0–3 here
    else:
        req = task_request(
            request,
            body,
            Operation.VIDEO,
            prompt=text,
            parsed=parsed,
            speed=forced_speed(request) or Speed.FAST,
            params=video.animate_params(body, request),
        )
    req.raw_request = request_record(body, action="extend" if video.is_extend(body) else None)
    req.translation = english.record
    return await submit_task(request, key, req)


_CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")


async def _change(
    request: Request, key: ApiKey, body: _Body, task_id: str | None, action: str, index: int | None
) -> JSONResponse:
    action = (action or "").upper()
    if action not in _CHANGE_ACTIONS:
        raise invalid("action must be UPSCALE, VARIATION or REROLL (action参数错误)", "action")
    if action != "REROLL" and (index is None or not 1 <= index <= 4):
        raise invalid("index must be 1–4 for UPSCALE and VARIATION", "index")
    parent = await parent_task(request, key, task_id)
    custom_id = custom_id_for(action, index or 1, parent.id)
    return await _run_action(request, key, parent, parse_custom_id(custom_id), body, custom_id, False)


@submit_route("change", ChangeBody)
async def change(request: Request, key: ApiKey, body: ChangeBody) -> JSONResponse:
    return await _change(request, key, body, body.taskId, body.action or "", body.index)


_SIMPLE = re.compile(r"^\s*(\S+)\s+([UuVv])([1-4])\s*$|^\s*(\S+)\s+[Rr]\s*$")


@submit_route("simple-change", SimpleChangeBody)
async def simple_change(request: Request, key: ApiKey, body: SimpleChangeBody) -> JSONResponse:
    m = _SIMPLE.match(body.content or "")
    if m is None:
        raise invalid(
            "content must be '<taskId> U1–U4', '<taskId> V1–V4' or '<taskId> R' (content参数错误)", "content"
        )
    if m[4]:
        return await _change(request, key, body, m[4], "REROLL", None)
    action = "UPSCALE" if m[2].upper() == "U" else "VARIATION"
    return await _change(request, key, body, m[1], action, int(m[3]))


@submit_route("action", ActionBody)
async def action(request: Request, key: ApiKey, body: ActionBody) -> JSONResponse:
    if not body.customId:
        raise invalid("customId is required", "customId")
    act = parse_custom_id(body.customId)
    parent = await parent_task(request, key, body.taskId)
    if "words" in act.params or act.operation is Operation.DESCRIBE:
        return await submit_task(request, key, from_words(request, parent, act, body))
    if body.strong is False and body.customId.startswith("MJ::JOB::variation::"):
        act.params["strength"] = "subtle"  # V1–V4 under Low Variation Mode
    remix = bool(body.enableRemix) and act.operation in REMIXABLE
    return await _run_action(request, key, parent, act, body, body.customId.strip(), remix)


@submit_route("modal", ModalBody)
async def modal(request: Request, key: ApiKey, body: ModalBody) -> JSONResponse:
    task = await parent_task(request, key, body.taskId)
    text = (body.prompt or "").strip()
    params: dict[str, Any] = {}
    if task.operation is Operation.ZOOM:
        try:
            text, scale = split_zoom(text)
        except PromptError as exc:
            raise prompt_error(exc) from exc
        if scale is not None:
            params["scale"] = scale
        elif "scale" not in task.spec.get("modal", {}).get("params", {}):
            raise invalid("Custom Zoom needs --zoom N (1–2) in the prompt", "prompt")
    if task.operation is Operation.INPAINT:
        if not body.maskBase64 or not body.maskBase64.strip():
            raise invalid("maskBase64 is required for Vary (Region)", "maskBase64")
        params["mask"] = {"base64": body.maskBase64.strip()}
    # text is a remix prompt (Custom Zoom pre-fills the original); parameters alone change nothing
    parsed, translation = None, None
    if has_words(text):
        english = await ctx(request).service.english(text)
        translation = english.record
        try:
            parsed = parse(english.text, str(task.request.get("version") or "7")).to_dict()
        except PromptError as exc:
            raise prompt_error(exc) from exc
    record = {"state": state_text(body.state)} if body.state is not None else None
    done = await ctx(request).service.submit_modal(
        key,
        task.id,
        prompt=(body.prompt or "").strip(),
        parsed=parsed,
        params=params,
        request=record,
        translation=translation,
    )
    return accepted(done)


@submit_route("blend", BlendBody)
async def blend(request: Request, key: ApiKey, body: BlendBody) -> JSONResponse:
    arrays = body.base64Array or []
    if not 2 <= len(arrays) <= 5:
        raise invalid("base64Array needs 2 to 5 images (base64List参数错误)", "base64Array")
    dims = (body.dimensions or "SQUARE").upper()
    if dims not in BLEND_DIMENSIONS:
        raise invalid("dimensions must be PORTRAIT, SQUARE or LANDSCAPE (dimensions参数错误)", "dimensions")
    images = [image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(arrays)]
    req = task_request(
        request,
        body,
        Operation.BLEND,
        speed=forced_speed(request) or Speed.FAST,
        params={"image_urls": images, "dimensions": BLEND_DIMENSIONS[dims]},
    )
    req.raw_request = request_record(body, botType=body.botType, dimensions=dims)
    return await submit_task(request, key, req)


@submit_route("retexture", RetextureBody)
async def retexture(request: Request, key: ApiKey, body: RetextureBody) -> JSONResponse:
    if not (body.prompt or "").strip():
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    image = image_ref(body.image, "image", request)
    req = await prompted(request, body, Operation.RETEXTURE, {"image_url": image})
    return await submit_task(request, key, req)


_UNSUPPORTED: dict[str, tuple[str, type[BaseModel]]] = {
    "edits": (
        "Edits of an uploaded image (use /mj/submit/action with Vary (Region), or retexture)",
        RetextureBody,
    ),
    "upload-discord-images": ("Uploading images to Discord", ImagineBody),
}


def _unsupported_route(name: str, what: str, body: type[BaseModel]) -> None:
    async def refuse(request: Request, key: ApiKey, data: Any) -> JSONResponse:
        raise not_supported(what)

    submit_route(name, body, *(("edit",) if name == "edits" else ()))(refuse)


for _name, (_what, _body) in _UNSUPPORTED.items():
    _unsupported_route(_name, _what, _body)


@router.post("/insight-face/swap", **documented(errors=SubmitResult, statuses=(401,), ok=SubmitResult))
async def face_swap(request: Request) -> JSONResponse:
    await authenticate(request)
    return failure(not_supported("Face swap (insight-face)"), None)
