"""midjourney-proxy's /mj/submit/* routes: imagine, change, simple-change, action, modal, blend,
retexture (and wire-shaped refusals for what openmj cannot do yet)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from openmj.core.accounts import ApiKey
from openmj.core.followups import REMIXABLE, followup_speed
from openmj.core.prompt import PromptError, parse
from openmj.core.prompt.modal import has_words, split_zoom
from openmj.core.prompt.policies import mjproxy_prompt, mjproxy_version
from openmj.core.tasks import ErrorCode, Operation, Speed, Task, TaskError, TaskRequest
from openmj.dialects.common import ctx, invalid, parse_model, prompt_error, read_json, video_prompt_fields
from openmj.dialects.mjproxy import video
from openmj.dialects.mjproxy.custom_id import Action, custom_id_for, parse_custom_id
from openmj.dialects.mjproxy.render import bot_type, display_prompt, model_of
from openmj.dialects.mjproxy.wire import (
    DIALECT,
    HTTP_LEVEL,
    MODEL,
    ActionBody,
    BlendBody,
    ChangeBody,
    Code,
    DescribeBody,
    ImagineBody,
    ModalBody,
    RetextureBody,
    ShortenBody,
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
    notify_url,
    request_record,
    result,
    state_text,
)
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

BLEND_DIMENSIONS = {"PORTRAIT": "2:3", "SQUARE": "1:1", "LANDSCAPE": "3:2"}
router = APIRouter()
Handler = Callable[[Request, ApiKey, Any], Awaitable[JSONResponse]]


def submit_route(path: str, body: type[BaseModel], *aliases: str) -> Callable[[Handler], Handler]:
    """A POST /mj/submit/<path> route reading `body`: authentication errors keep their HTTP
    status; every other refusal is HTTP 200 with a SubmitResultVO code (NZK), which relays read."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> JSONResponse:
            key = await authenticate(request)
            data: Any = None
            try:
                data = await read_json(request)
                return await handler(request, key, parse_model(body, data))
            except TaskError as err:
                if err.code in HTTP_LEVEL or err.http_status >= 500:
                    raise
                prompt = data.get("prompt") if isinstance(data, dict) else None
                return failure(err, prompt if isinstance(prompt, str) else None)

        doc = documented(body, errors=SubmitResult, statuses=(401, 413, 429), ok=SubmitResult)
        for name in (path, *aliases):
            router.add_api_route(
                f"/submit/{name}", endpoint, methods=["POST"], name=f"mj_submit_{name}", **doc
            )
        return handler

    return register


def _accepted(task: Task) -> JSONResponse:
    return JSONResponse(result(Code.SUCCESS, "Submit success", task.id))


async def _submit(request: Request, key: ApiKey, req: TaskRequest) -> JSONResponse:
    return _accepted(await ctx(request).service.submit(key, req))


def _parse(text: str, bot: str | None) -> tuple[dict[str, Any], Speed]:
    try:
        parsed, speed = mjproxy_prompt(text, bot)
    except PromptError as exc:
        raise prompt_error(exc) from exc
    return parsed.to_dict(), Speed(speed)


async def _parent(request: Request, key: ApiKey, task_id: str | None) -> Task:
    if not task_id or not task_id.strip():
        raise invalid("taskId is required (taskId不能为空)", "taskId")
    try:
        return await ctx(request).service.get(key, task_id.strip())
    except TaskError as err:
        if err.code is not ErrorCode.NOT_FOUND:
            raise
        message = f"Task not found or expired: {task_id.strip()} (关联任务不存在或已失效)"
        raise TaskError(ErrorCode.NOT_FOUND, message, 404, param="taskId") from err


def _request(request: Request, body: _Body, operation: Operation, **fields: Any) -> TaskRequest:
    return TaskRequest(
        operation=operation,
        model=MODEL,
        dialect=DIALECT,
        callback_url=notify_url(request, body.notifyHook),
        index_field="index",  # this API numbers images from 1
        index_base=1,
        **fields,
    )


def _action_request(
    request: Request, parent: Task, action: Action, body: _Body, custom_id: str
) -> TaskRequest:
    """An action on `parent` as a TaskRequest (modal ones are completed by /mj/submit/modal)."""
    index = None if action.operation is Operation.REROLL else action.index - 1
    req = _request(
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
    return await _submit(request, key, req)


def _prompted(
    request: Request, body: ImagineBody | RetextureBody, operation: Operation, params: dict[str, Any]
) -> TaskRequest:
    """A task from a prompt as on Discord: the text is required, `--fast` & co pick the mode."""
    text = (body.prompt or "").strip()
    if not text:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    parsed, speed = _parse(text, body.botType)
    req = _request(
        request,
        body,
        operation,
        prompt=text,
        parsed=parsed,
        speed=forced_speed(request) or speed,
        params=params,
        prompt_version=mjproxy_version(body.botType),
    )
    req.raw_request = request_record(body, botType=body.botType)
    return req


@submit_route("imagine", ImagineBody)
async def imagine(request: Request, key: ApiKey, body: ImagineBody) -> JSONResponse:
    images = [image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(body.base64Array or [])]
    req = _prompted(request, body, Operation.IMAGINE, {"image_urls": images} if images else {})
    if req.parsed is not None and req.parsed.get("params", {}).get("video"):  # imagine … --video
        req.operation, req.params = Operation.VIDEO, video.imagine_params(req.parsed, images, request)
    return await _submit(request, key, req)


@submit_route("video", VideoBody)
async def submit_video(request: Request, key: ApiKey, body: VideoBody) -> JSONResponse:
    ctx(request).service.require_capability(Operation.VIDEO)
    text = (body.prompt or "").strip()
    parsed = video_prompt_fields(text)
    if video.is_extend(body):
        parent = await _parent(request, key, body.taskId)
        req = _request(
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
        req = _request(
            request,
            body,
            Operation.VIDEO,
            prompt=text,
            parsed=parsed,
            speed=forced_speed(request) or Speed.FAST,
            params=video.animate_params(body, request),
        )
    req.raw_request = request_record(body, action="extend" if video.is_extend(body) else None)
    return await _submit(request, key, req)


_CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")


async def _change(
    request: Request, key: ApiKey, body: _Body, task_id: str | None, action: str, index: int | None
) -> JSONResponse:
    action = (action or "").upper()
    if action not in _CHANGE_ACTIONS:
        raise invalid("action must be UPSCALE, VARIATION or REROLL (action参数错误)", "action")
    if action != "REROLL" and (index is None or not 1 <= index <= 4):
        raise invalid("index must be 1–4 for UPSCALE and VARIATION", "index")
    parent = await _parent(request, key, task_id)
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
    parent = await _parent(request, key, body.taskId)
    if body.strong is False and body.customId.startswith("MJ::JOB::variation::"):
        act.params["strength"] = "subtle"  # V1–V4 under Low Variation Mode
    remix = bool(body.enableRemix) and act.operation in REMIXABLE
    return await _run_action(request, key, parent, act, body, body.customId.strip(), remix)


@submit_route("modal", ModalBody)
async def modal(request: Request, key: ApiKey, body: ModalBody) -> JSONResponse:
    task = await _parent(request, key, body.taskId)
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
    parsed = None
    if has_words(text):
        try:
            parsed = parse(text, str(task.request.get("version") or "7")).to_dict()
        except PromptError as exc:
            raise prompt_error(exc) from exc
    record = {"state": state_text(body.state)} if body.state is not None else None
    done = await ctx(request).service.submit_modal(
        key, task.id, prompt=(body.prompt or "").strip(), parsed=parsed, params=params, request=record
    )
    return _accepted(done)


@submit_route("blend", BlendBody)
async def blend(request: Request, key: ApiKey, body: BlendBody) -> JSONResponse:
    arrays = body.base64Array or []
    if not 2 <= len(arrays) <= 5:
        raise invalid("base64Array needs 2 to 5 images (base64List参数错误)", "base64Array")
    dims = (body.dimensions or "SQUARE").upper()
    if dims not in BLEND_DIMENSIONS:
        raise invalid("dimensions must be PORTRAIT, SQUARE or LANDSCAPE (dimensions参数错误)", "dimensions")
    images = [image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(arrays)]
    req = _request(
        request,
        body,
        Operation.BLEND,
        speed=forced_speed(request) or Speed.FAST,
        params={"image_urls": images, "dimensions": BLEND_DIMENSIONS[dims]},
    )
    req.raw_request = request_record(body, botType=body.botType, dimensions=dims)
    return await _submit(request, key, req)


@submit_route("retexture", RetextureBody)
async def retexture(request: Request, key: ApiKey, body: RetextureBody) -> JSONResponse:
    if not (body.prompt or "").strip():
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    image = image_ref(body.image, "image", request)
    return await _submit(request, key, _prompted(request, body, Operation.RETEXTURE, {"image_url": image}))


_UNSUPPORTED: dict[str, tuple[str, type[BaseModel]]] = {
    "describe": ("Describe (image to prompt)", DescribeBody),
    "shorten": ("Shorten (prompt analysis)", ShortenBody),
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
