"""midjourney-proxy: /mj/submit/*, /mj/task/* (and the /mj-fast, /mj-turbo, /mj-relax prefixes).

spec/api-dialects.md §4–§6, spec/mj-prompt.md §13. Thin: wire JSON ⇄ core types. The open API that
novicezk (NZK) started and trueai-org (TAO) extended; new-api and one-hub relay it, so it must also
behave as those relays expect from an upstream (§5.2): SubmitResultVO with HTTP 200, code 1 for
every accepted task, a fast bulk `list-by-condition`, camelCase Task objects with `buttons`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from openmj.core.operations import VALIDATORS
from openmj.core.prompt import PromptError, parse
from openmj.core.tasks import ErrorCode, ImageResult, Operation, Speed, Status, Task, TaskError, TaskRequest
from openmj.dialects.common import Context, ctx, media_url, parse_model, read_json
from openmj.jsonwire import JSONResponse
from openmj.net import ImageFetchError, UnsafeURLError, check_url, decode_data_uri, sniff_format
from openmj.store.repo import ApiKey

DIALECT = "mjproxy"
MODEL = "midjourney"  # the API has no model field; the name key model lists and prices see
MAX_NOTIFY_URL = 2048  # the callback deliverer's limit (callbacks.MAX_URL_LENGTH)
# The deliverer posts https only (DESIGN.md "Outbound requests"), so an http notifyHook is refused
# at submit rather than accepted and silently never called. NZK/TAO accept http.
NOTIFY_HTTPS_ONLY = True
LIST_LIMIT = 100  # TAO /mj/task/list: "the latest 100 tasks"
QUEUE_PAGE = 1000  # /mj/task/queue page size: the default per-key limit of unfinished tasks
PAN_SCALE = 1.5  # Midjourney pans add ≈ +50 % of the side (spec mj-prompt §13); not user-controllable
OUTPAINT = {"50": 2.0, "75": 1.5}  # MJ::Outpaint::50 = Zoom Out 2x, ::75 = Zoom Out 1.5x
MAKE_SQUARE_PCT = "100"  # MJ::Outpaint::100 = Make Square (the Discord button's own id)
SPEED_PREFIXES = {"mj-fast": Speed.FAST, "mj-turbo": Speed.TURBO, "mj-relax": Speed.RELAX}
BLEND_DIMENSIONS = {"PORTRAIT": "2:3", "SQUARE": "1:1", "LANDSCAPE": "3:2"}

router = APIRouter()
api = APIRouter(prefix="/mj")


# --------------------------------------------------------------------------- codes and errors


class Code:
    """SubmitResultVO codes (NZK ReturnCode). 22 (queued) is never sent: an accepted task is 1."""

    SUCCESS = 1
    NOT_FOUND = 3
    VALIDATION_ERROR = 4
    FAILURE = 9
    MODAL = 21
    QUEUE_REJECTED = 23
    BANNED_PROMPT = 24


_CODES = {
    ErrorCode.NOT_FOUND: Code.NOT_FOUND,
    ErrorCode.TOO_MANY_TASKS: Code.QUEUE_REJECTED,
    ErrorCode.QUEUE_FULL: Code.QUEUE_REJECTED,
    ErrorCode.RATE_LIMITED: Code.QUEUE_REJECTED,
    ErrorCode.SERVICE_ERROR: Code.FAILURE,
}
#: errors that keep their HTTP status even on a submit route: they are not about the task
_HTTP_LEVEL = frozenset(
    {
        ErrorCode.UNAUTHORIZED,
        ErrorCode.KEY_DISABLED,
        ErrorCode.KEY_EXPIRED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.REQUEST_TOO_LARGE,
    }
)


def mj_code(err: TaskError) -> int:
    if err.code is ErrorCode.CONTENT_POLICY and "banned_word" in err.extra:
        return Code.BANNED_PROMPT
    if err.http_status >= 500:
        return Code.FAILURE
    return _CODES.get(err.code, Code.VALIDATION_ERROR)


def _result(
    code: int, description: str, result: Any = None, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"code": code, "description": description, "result": result, "properties": properties or {}}


def error_response(err: TaskError) -> JSONResponse:
    """Errors outside a submit (auth, unknown route, body too large, read routes): the natural
    HTTP status with a SubmitResultVO body, so clients that read `code`/`description` still can."""
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    body = _result(mj_code(err), err.message)
    return JSONResponse(body, status_code=err.http_status, headers=headers)


def _failure(err: TaskError, prompt: str | None) -> JSONResponse:
    """A refused submit: HTTP 200 with the code in the body, as NZK answers (relays read the body)."""
    properties: dict[str, Any] = {}
    code = mj_code(err)
    if code == Code.BANNED_PROMPT:
        properties = {"promptEn": prompt or "", "bannedWord": err.extra["banned_word"]}
    return JSONResponse(_result(code, err.message, None, properties))


def _invalid(message: str, param: str | None = None) -> TaskError:
    return TaskError(ErrorCode.INVALID_PARAMETERS, message, 400, param=param)


def _not_supported(what: str) -> TaskError:
    return TaskError(ErrorCode.NOT_SUPPORTED, f"{what} is not supported by openmj yet", 400)


# --------------------------------------------------------------------------- auth and speed


def _secrets(request: Request) -> list[str]:
    """Authorization (raw or Bearer, TAO and relays) first, then mj-api-secret (NZK). A literal
    "midjourney-proxy" Authorization is what relays send when no key is set: skip it (§5.1)."""
    auth = request.headers.get("authorization", "").strip()
    if auth[:7].lower() == "bearer ":
        auth = auth[7:].strip()
    secret = request.headers.get("mj-api-secret", "").strip()
    out = [s for s in (auth, secret) if s and s != "midjourney-proxy"]
    return list(dict.fromkeys(out))


async def _authenticate(request: Request) -> ApiKey:
    candidates = _secrets(request) or [""]
    service = ctx(request).service
    for i, secret in enumerate(candidates):
        try:
            key = await service.authenticate(secret or None)
        except TaskError as err:
            if err.code is not ErrorCode.UNAUTHORIZED:
                raise
            # a client may send a stale Authorization next to a good mj-api-secret: try both
            if i + 1 < len(candidates):
                continue
            raise TaskError(
                ErrorCode.UNAUTHORIZED,
                "Invalid or missing key: send 'mj-api-secret: <key>' or 'Authorization: <key>'",
                401,
            ) from err
        request.state.key_id = key.id
        return key
    raise AssertionError("unreachable")


def _forced_speed(request: Request) -> Speed | None:
    """/mj-fast/mj/…, /mj-turbo/mj/…, /mj-relax/mj/… force the speed (TAO routes)."""
    first = request.url.path.lstrip("/").split("/", 1)[0]
    return SPEED_PREFIXES.get(first)


# --------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    # unknown keys (accountFilter, botType on actions…) are ignored; numeric ids become strings
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    state: Any = None
    notifyHook: str | None = None


class ImagineBody(_Body):
    prompt: str | None = None
    base64Array: list[str] | None = None
    botType: str | None = None


class ChangeBody(_Body):
    taskId: str | None = None
    action: str | None = None
    index: int | None = None


class SimpleChangeBody(_Body):
    content: str | None = None


class ActionBody(_Body):
    taskId: str | None = None
    customId: str | None = None
    enableRemix: bool | None = None
    strong: bool | None = None


class ModalBody(_Body):
    taskId: str | None = None
    prompt: str | None = None
    maskBase64: str | None = None


class BlendBody(_Body):
    base64Array: list[str] | None = None
    dimensions: str | None = None
    botType: str | None = None


class RetextureBody(_Body):
    prompt: str | None = None
    image: str | None = None
    botType: str | None = None


class ListBody(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    ids: list[str] | None = None


def _state(value: Any) -> str:
    """`state` is a string in every implementation (NZK String, new-api string): keep others as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _notify_url(request: Request, url: str | None) -> str | None:
    if not url or not url.strip():
        return None
    try:
        check_url(url.strip(), ctx(request).net, https_only=NOTIFY_HTTPS_ONLY, max_length=MAX_NOTIFY_URL)
    except UnsafeURLError as exc:
        raise _invalid(f"Invalid notifyHook: {exc.message}", "notifyHook") from exc
    return url.strip()


def _version(bot_type: str | None) -> str:
    """botType NIJI_JOURNEY makes Niji the default model (the prompt's --v/--niji still win)."""
    return "niji 7" if (bot_type or "").upper() == "NIJI_JOURNEY" else "7"


def _parse(text: str, version: str) -> dict[str, Any]:
    try:
        return parse(text, version).to_dict()
    except PromptError as exc:
        raise TaskError(ErrorCode.INVALID_PROMPT, exc.message, 400, param="prompt") from exc


def _prompt_speed(parsed: dict[str, Any]) -> Speed:
    """--fast/--turbo/--relax (or --draft) in the prompt pick the mode, as on Discord."""
    params = parsed.get("params", {})
    speed = params.get("speed")
    if speed in ("fast", "turbo", "relax"):
        return Speed(speed)
    return Speed.DRAFT if params.get("draft") else Speed.FAST


def _image_data_uri(value: Any, where: str, request: Request) -> str:
    """A base64 image as a data: URI. TAO wants data URLs; raw base64 is accepted too."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{where} must be a base64 image (base64格式错误)", where)
    text = value.strip()
    policy = ctx(request).net
    try:
        if text[:5].lower() == "data:":
            data, _ = decode_data_uri(text, policy)
        else:
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            if len(data) > policy.max_bytes:
                raise ImageFetchError("too_large", f"larger than {policy.max_bytes} bytes")
    except (ImageFetchError, binascii.Error, ValueError) as exc:
        raise _invalid(f"{where} is not a valid base64 image (base64格式错误): {exc}", where) from exc
    fmt = sniff_format(data)
    if fmt is None:
        raise _invalid(f"{where} is not a PNG, JPEG, GIF or WebP image (base64格式错误)", where)
    if text[:5].lower() == "data:":
        return text
    return f"data:image/{fmt.lower()};base64,{text}"


def _image_ref(value: Any, where: str, request: Request) -> str:
    """An image given as a URL or as base64 (TAO `image` fields)."""
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return _image_data_uri(value, where, request)


def _request_record(body: _Body, **extra: Any) -> dict[str, Any]:
    """What the task keeps of the wire body (TaskRequest.raw_request): the fields a Task JSON
    echoes. Images are not kept here (they are in the spec already)."""
    return {"state": _state(body.state), **{k: v for k, v in extra.items() if v is not None}}


# --------------------------------------------------------------------------- customId grammar


@dataclass
class Action:
    """A button press translated to the core: operation, 1-based image number, params."""

    operation: Operation
    index: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    modal: bool = False  # needs /mj/submit/modal before it can run (code 21)


_UPSAMPLE_HD = re.compile(r"upsample_v\w+?_(?P<factor>[24])x(?:_(?P<mode>subtle|creative))?")
_PANS = {"pan_left": "left", "pan_right": "right", "pan_up": "up", "pan_down": "down"}


def _number(text: str, custom_id: str) -> int:
    if not text.isdigit():
        raise _invalid(f"Invalid customId '{custom_id}': '{text}' is not an image number", "customId")
    return int(text)


def parse_custom_id(custom_id: str) -> Action:
    """`MJ::<KIND>::…::<hash>[::SOLO]` (spec §4.5) → Action. The hash is not used: `taskId` names
    the task (hashes are Discord message hashes, which openmj replaces by task ids)."""
    parts = custom_id.strip().split("::")
    if len(parts) < 3 or parts[0] != "MJ":
        raise _invalid(f"Invalid customId '{custom_id}': expected MJ::<kind>::…", "customId")
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
        if name.startswith(("animate", "video")):
            raise _not_supported("Video (animate / video upscale)")
    elif kind == "Outpaint" and len(parts) >= 4:
        n = _number(parts[3], custom_id)
        if parts[2] in OUTPAINT:
            return Action(Operation.ZOOM, n, {"scale": OUTPAINT[parts[2]]})
        if parts[2] == MAKE_SQUARE_PCT:
            return Action(Operation.MAKE_SQUARE, n)
        raise _invalid(f"Invalid customId '{custom_id}': Outpaint takes 50, 75 or 100", "customId")
    elif kind == "CustomZoom":  # MJ::CustomZoom::{hash} (Discord) or MJ::CustomZoom::{n}::{hash}
        n = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 1
        return Action(Operation.ZOOM, n, modal=True)
    elif kind == "Inpaint":  # Vary (Region)
        return Action(Operation.INPAINT, _number(parts[2], custom_id), modal=True)
    elif kind in ("Picread", "Job") or "PicReader" in custom_id:
        raise _not_supported("Describe (and imagine from a description)")
    raise _invalid(f"Unknown customId '{custom_id}'", "customId")


def custom_id_for(action: str, index: int, task_id: str) -> str:
    """The button id that /mj/submit/change and simple-change stand for (kept on the task)."""
    if action == "REROLL":
        return f"MJ::JOB::reroll::0::{task_id}::SOLO"
    name = "upsample" if action == "UPSCALE" else "variation"
    return f"MJ::JOB::{name}::{index}::{task_id}"


# --------------------------------------------------------------------------- rendering


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
    Operation.DESCRIBE: "DESCRIBE",
}
#: core status → Task.status. Cancelled is FAILURE, as TAO's own cancel writes it: relays treat
#: only SUCCESS and FAILURE as final (new-api keeps polling CANCEL and never refunds it).
_STATUS = {
    Status.PENDING: "SUBMITTED",
    Status.PROCESSING: "IN_PROGRESS",
    Status.COMPLETED: "SUCCESS",
    Status.FAILED: "FAILURE",
    Status.CANCELLED: "FAILURE",
    Status.MODAL: "MODAL",
}
_MODES = {Speed.FAST: "FAST", Speed.TURBO: "TURBO", Speed.RELAX: "RELAX", Speed.DRAFT: "FAST"}


def _upscaled(task: Task) -> bool:
    """An Upscale (Subtle/Creative) result, as opposed to an image separated from its grid."""
    return task.operation is Operation.UPSCALE and task.spec.get("options", {}).get("factor", 1) > 1


def task_action(task: Task) -> str:
    if _upscaled(task):
        return "UPSCALE_HD"  # TAO's name for Upscale (Subtle/Creative)
    return _ACTIONS.get(task.operation, "ACTION")


def _own(task: Task, name: str) -> Any:
    """A field this dialect stored with the task (other dialects' bodies mean other things)."""
    return task.request.get(name) if task.dialect == DIALECT else None


def _model_of(task: Task) -> str:
    return str(task.spec.get("prompt", {}).get("effective_model") or "7")


def _bot_type(task: Task) -> str:
    model = task.spec.get("prompt", {}).get("effective_model") or _own(task, "botType") or ""
    return "NIJI_JOURNEY" if str(model).upper().startswith("NIJI") else "MID_JOURNEY"


def _display_prompt(task: Task) -> str:
    return task.prompt or str(task.request.get("prompt") or "")


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _grid_buttons(task: Task) -> list[dict[str, Any]]:
    h = task.id  # the "job hash": openmj's task id stands in for Discord's message hash
    out = [_button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)]
    if task.operation in (Operation.IMAGINE, Operation.REROLL):  # the core rerolls only these
        out.append(_button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="🔄"))
    out += [_button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)]
    return out


def _upscale_ids(task: Task) -> list[tuple[str, str]]:
    """(customId name, label) of Upscale buttons for the task's model version."""
    model = _model_of(task).removeprefix("niji ")
    major = model.split(".")[0]
    if major.isdigit() and int(major) >= 6:
        v = f"v{major}"
        return [
            (f"upsample_{v}_2x_subtle", "Upscale (Subtle)"),
            (f"upsample_{v}_2x_creative", "Upscale (Creative)"),
        ]
    return [("upsample_v5_2x", "Upscale (2x)"), ("upsample_v5_4x", "Upscale (4x)")]


def _single_buttons(task: Task, image: ImageResult) -> list[dict[str, Any]]:
    """Discord's buttons under one image, limited to what the core can run on it."""
    h = task.id
    out: list[dict[str, Any]] = []
    if not _upscaled(task):  # an upscaled image cannot be upscaled again (the core refuses it)
        out += [_button(f"MJ::JOB::{name}::1::{h}::SOLO", label) for name, label in _upscale_ids(task)]
    out += [
        _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        _button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
    ]
    if Operation.INPAINT in VALIDATORS:
        out.append(_button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"))
    out += [
        _button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        _button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
    ]
    for name, emoji in (("pan_left", "⬅️"), ("pan_right", "➡️"), ("pan_up", "⬆️"), ("pan_down", "⬇️")):
        out.append(_button(f"MJ::JOB::{name}::1::{h}::SOLO", emoji=emoji))
    if image.width != image.height:
        out.append(_button(f"MJ::Outpaint::{MAKE_SQUARE_PCT}::1::{h}::SOLO", "Make Square", "↔️"))
    return out


def buttons(task: Task) -> list[dict[str, Any]]:
    if task.status is not Status.COMPLETED:
        return []
    if len(task.results) == 4:
        return _grid_buttons(task)
    if len(task.results) == 1:
        return _single_buttons(task, task.results[0])
    return []


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def render(context: Context, task: Task) -> dict[str, Any]:
    """The Task object of spec §4.4 (fetch, list, notifyHook)."""
    prompt = _display_prompt(task)
    status = _STATUS.get(task.status, "FAILURE")
    progress = {
        Status.PENDING: "0%",
        Status.PROCESSING: f"{task.progress}%",
        Status.COMPLETED: "100%",
        Status.MODAL: "0%",
    }.get(task.status, "")
    # TAO keeps the submit answer as the description (its own example: "Submit success")
    description = "Waiting for window confirm" if task.status is Status.MODAL else "Submit success"
    out: dict[str, Any] = {
        "id": task.id,
        "action": task_action(task),
        "customId": _own(task, "customId") or "",
        "botType": _bot_type(task),
        "prompt": prompt,
        "promptEn": prompt,
        "description": description,
        "state": _own(task, "state") or "",
        "submitTime": _ms(task.created_at),
        "startTime": _ms(task.started_at),
        "finishTime": _ms(task.finished_at),
        "imageUrl": "",
        "imageUrls": [],
        "status": status,
        "progress": progress,
        "failReason": (task.error_message or task.error_code or "") if status == "FAILURE" else "",
        "buttons": buttons(task),
        "seed": None,
        "mode": _MODES.get(task.speed, "FAST"),
        "width": None,
        "height": None,
        "parentId": task.parent_id or "",
        "maskBase64": "",
        "properties": {"finalPrompt": prompt, "finalZhPrompt": ""},
    }
    if task.status is Status.COMPLETED and task.results:
        shown = task.grid or task.results[0]  # imageUrl is the grid of a 4-image job
        out["imageUrl"] = media_url(context.signer, task, shown)
        out["imageUrls"] = [{"url": media_url(context.signer, task, im)} for im in task.results]
        out["width"], out["height"] = shown.width, shown.height
        out["seed"] = str(image_seed(task))
    return out


def image_seed(task: Task) -> int:
    """The seed of the task's image; for a grid the first image's (MJ's grid seed)."""
    if task.results and task.results[0].seed is not None:
        return task.results[0].seed
    return task.seed


def callback_payload(context: Context, task: Task, event: str) -> dict[str, Any]:
    """The notifyHook body: the Task JSON at the moment of `event` (spec §4.6). A progress event
    is rendered with its own percentage: the task may have moved on before delivery."""
    body = render(context, task)
    if event.startswith("progress:"):
        pct = event.partition(":")[2]
        body |= {"status": "IN_PROGRESS", "progress": f"{int(pct) if pct.isdigit() else 0}%"}
        body |= {"imageUrl": "", "imageUrls": [], "buttons": [], "failReason": ""}
    elif event == "started":
        body |= {"status": "IN_PROGRESS", "progress": "0%"}
    return body


# --------------------------------------------------------------------------- submit helpers

Handler = Callable[[Request, ApiKey, Any], Awaitable[JSONResponse]]


def submit_route(path: str, *aliases: str) -> Callable[[Handler], Handler]:
    """A POST /mj/submit/<path> route: authentication errors keep their HTTP status; every
    other refusal is HTTP 200 with a SubmitResultVO code (NZK), which relays read."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> JSONResponse:
            key = await _authenticate(request)
            data: Any = None
            try:
                data = await read_json(request)
                return await handler(request, key, data)
            except TaskError as err:
                if err.code in _HTTP_LEVEL or err.http_status >= 500:
                    raise
                prompt = data.get("prompt") if isinstance(data, dict) else None
                return _failure(err, prompt if isinstance(prompt, str) else None)

        for name in (path, *aliases):
            api.add_api_route(f"/submit/{name}", endpoint, methods=["POST"], name=f"mj_submit_{name}")
        return handler

    return register


def _accepted(task: Task) -> JSONResponse:
    return JSONResponse(_result(Code.SUCCESS, "Submit success", task.id))


async def _submit(request: Request, key: ApiKey, req: TaskRequest) -> JSONResponse:
    return _accepted(await ctx(request).service.submit(key, req))


async def _parent(request: Request, key: ApiKey, task_id: str | None) -> Task:
    if not task_id or not task_id.strip():
        raise _invalid("taskId is required (taskId不能为空)", "taskId")
    try:
        return await ctx(request).service.get(key, task_id.strip())
    except TaskError as err:
        if err.code is not ErrorCode.NOT_FOUND:
            raise
        message = f"Task not found or expired: {task_id.strip()} (关联任务不存在或已失效)"
        raise TaskError(ErrorCode.NOT_FOUND, message, 404, param="taskId") from err


def _action_request(
    request: Request, parent: Task, action: Action, body: _Body, custom_id: str
) -> TaskRequest:
    """An action on `parent` as a TaskRequest (modal ones are completed by /mj/submit/modal)."""
    index: int | None = None
    if action.operation is not Operation.REROLL:
        count = len(parent.results)
        if parent.status is Status.COMPLETED and not 1 <= action.index <= count:
            raise _invalid(
                f"Image number {action.index} is out of range: task {parent.id} has {count} image(s)", "index"
            )
        index = action.index - 1
    speed = _forced_speed(request) or (parent.speed if parent.speed is not Speed.DRAFT else Speed.FAST)
    shown = _display_prompt(parent)
    req = TaskRequest(
        refuse_banned=True,  # midjourney-proxy answers a banned prompt with code 24 at submit
        operation=action.operation,
        model=MODEL,
        dialect=DIALECT,
        speed=speed,
        params=dict(action.params),
        parent_id=parent.id,
        parent_index=index,
        callback_url=_notify_url(request, body.notifyHook),
        prompt_version=_model_of(parent),
    )
    req.raw_request = _request_record(
        body,
        customId=custom_id,
        prompt=shown,  # actions show the source's prompt, as Discord does
        botType=_bot_type(parent),
        version=req.prompt_version,  # the context a modal's remix prompt is parsed in
    )
    return req


async def _run_action(
    request: Request, key: ApiKey, parent: Task, action: Action, body: _Body, custom_id: str, remix: bool
) -> JSONResponse:
    req = _action_request(request, parent, action, body, custom_id)
    if action.modal or remix:
        task = await ctx(request).service.open_modal(key, req)
        properties = {"finalPrompt": _display_prompt(parent), "remix": True}
        return JSONResponse(_result(Code.MODAL, "Waiting for window confirm", task.id, properties))
    return await _submit(request, key, req)


# --------------------------------------------------------------------------- submit routes


@submit_route("imagine")
async def imagine(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(ImagineBody, data)
    text = (body.prompt or "").strip()
    if not text:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    images = [_image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(body.base64Array or [])]
    parsed = _parse(text, _version(body.botType))
    req = TaskRequest(
        refuse_banned=True,  # midjourney-proxy answers a banned prompt with code 24 at submit
        operation=Operation.IMAGINE,
        model=MODEL,
        dialect=DIALECT,
        prompt=text,
        parsed=parsed,
        speed=_forced_speed(request) or _prompt_speed(parsed),
        params={"image_urls": images} if images else {},
        callback_url=_notify_url(request, body.notifyHook),
        prompt_version=_version(body.botType),
    )
    req.raw_request = _request_record(body, botType=body.botType)
    return await _submit(request, key, req)


_CHANGE_ACTIONS = ("UPSCALE", "VARIATION", "REROLL")


async def _change(
    request: Request, key: ApiKey, body: _Body, task_id: str | None, action: str, index: int | None
) -> JSONResponse:
    action = (action or "").upper()
    if action not in _CHANGE_ACTIONS:
        raise _invalid("action must be UPSCALE, VARIATION or REROLL (action参数错误)", "action")
    if action != "REROLL" and (index is None or not 1 <= index <= 4):
        raise _invalid("index must be 1–4 for UPSCALE and VARIATION", "index")
    parent = await _parent(request, key, task_id)
    custom_id = custom_id_for(action, index or 1, parent.id)
    return await _run_action(request, key, parent, parse_custom_id(custom_id), body, custom_id, False)


@submit_route("change")
async def change(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(ChangeBody, data)
    return await _change(request, key, body, body.taskId, body.action or "", body.index)


_SIMPLE = re.compile(r"^\s*(\S+)\s+([UuVv])([1-4])\s*$|^\s*(\S+)\s+[Rr]\s*$")


@submit_route("simple-change")
async def simple_change(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(SimpleChangeBody, data)
    m = _SIMPLE.match(body.content or "")
    if m is None:
        raise _invalid(
            "content must be '<taskId> U1–U4', '<taskId> V1–V4' or '<taskId> R' (content参数错误)", "content"
        )
    if m[4]:
        return await _change(request, key, body, m[4], "REROLL", None)
    action = "UPSCALE" if m[2].upper() == "U" else "VARIATION"
    return await _change(request, key, body, m[1], action, int(m[3]))


#: what Remix mode edits on Discord (Vary, Reroll, Pan, Zoom Out, Make Square; not Upscale)
REMIXABLE = frozenset(
    {Operation.VARIATION, Operation.REROLL, Operation.PAN, Operation.ZOOM, Operation.MAKE_SQUARE}
)


@submit_route("action")
async def action(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(ActionBody, data)
    if not body.customId:
        raise _invalid("customId is required", "customId")
    act = parse_custom_id(body.customId)
    parent = await _parent(request, key, body.taskId)
    if body.strong is False and body.customId.startswith("MJ::JOB::variation::"):
        act.params["strength"] = "subtle"  # V1–V4 under Low Variation Mode
    remix = bool(body.enableRemix) and act.operation in REMIXABLE
    return await _run_action(request, key, parent, act, body, body.customId.strip(), remix)


_ZOOM = re.compile(r"(?:^|\s)(?:--|—)zoom\s+(\S+)", re.IGNORECASE)  # Discord takes an em dash too


@submit_route("modal")
async def modal(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(ModalBody, data)
    task = await _parent(request, key, body.taskId)
    text = (body.prompt or "").strip()
    params: dict[str, Any] = {}
    if task.operation is Operation.ZOOM:
        m = _ZOOM.search(text)
        if m is not None:
            try:
                params["scale"] = float(m[1])
            except ValueError:
                raise _invalid(f"--zoom must be a number from 1 to 2 (got {m[1]!r})", "prompt") from None
            if not 1.0 <= params["scale"] <= 2.0:
                raise _invalid(f"--zoom must be a number from 1 to 2 (got {m[1]})", "prompt")
            text = _ZOOM.sub(" ", text).strip()
        elif "scale" not in task.spec.get("modal", {}).get("params", {}):
            raise _invalid("Custom Zoom needs --zoom N (1–2) in the prompt", "prompt")
    if task.operation is Operation.INPAINT:
        if not body.maskBase64 or not body.maskBase64.strip():
            raise _invalid("maskBase64 is required for Vary (Region)", "maskBase64")
        params["mask"] = {"base64": body.maskBase64.strip()}
    # text is a remix prompt (Custom Zoom pre-fills the original); parameters alone change nothing
    parsed = _parse(text, str(task.request.get("version") or "7")) if _has_words(text) else None
    record = {"state": _state(body.state)} if body.state is not None else None
    done = await ctx(request).service.submit_modal(
        key, task.id, prompt=(body.prompt or "").strip(), parsed=parsed, params=params, request=record
    )
    return _accepted(done)


def _has_words(text: str) -> bool:
    """Whether a modal prompt carries text (a remix) rather than only parameters."""
    cut = re.split(r"(?:^|\s)(?:--|—)", text, maxsplit=1)[0]
    return bool(cut.strip())


@submit_route("blend")
async def blend(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(BlendBody, data)
    arrays = body.base64Array or []
    if not 2 <= len(arrays) <= 5:
        raise _invalid("base64Array needs 2 to 5 images (base64List参数错误)", "base64Array")
    dims = (body.dimensions or "SQUARE").upper()
    if dims not in BLEND_DIMENSIONS:
        raise _invalid("dimensions must be PORTRAIT, SQUARE or LANDSCAPE (dimensions参数错误)", "dimensions")
    images = [_image_data_uri(b, f"base64Array[{i}]", request) for i, b in enumerate(arrays)]
    req = TaskRequest(
        refuse_banned=True,  # midjourney-proxy answers a banned prompt with code 24 at submit
        operation=Operation.BLEND,
        model=MODEL,
        dialect=DIALECT,
        speed=_forced_speed(request) or Speed.FAST,
        params={"image_urls": images, "dimensions": BLEND_DIMENSIONS[dims]},
        callback_url=_notify_url(request, body.notifyHook),
    )
    req.raw_request = _request_record(body, botType=body.botType, dimensions=dims)
    return await _submit(request, key, req)


@submit_route("retexture")
async def retexture(request: Request, key: ApiKey, data: Any) -> JSONResponse:
    body = parse_model(RetextureBody, data)
    text = (body.prompt or "").strip()
    if not text:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    image = _image_ref(body.image, "image", request)
    parsed = _parse(text, _version(body.botType))
    req = TaskRequest(
        refuse_banned=True,  # midjourney-proxy answers a banned prompt with code 24 at submit
        operation=Operation.RETEXTURE,
        model=MODEL,
        dialect=DIALECT,
        prompt=text,
        parsed=parsed,
        speed=_forced_speed(request) or _prompt_speed(parsed),
        params={"image_url": image},
        callback_url=_notify_url(request, body.notifyHook),
    )
    req.raw_request = _request_record(body, botType=body.botType)
    return await _submit(request, key, req)


_UNSUPPORTED = {
    "describe": "Describe (image to prompt)",
    "shorten": "Shorten (prompt analysis)",
    "video": "Video",
    "edits": "Edits of an uploaded image (use /mj/submit/action with Vary (Region), or retexture)",
    "upload-discord-images": "Uploading images to Discord",
}


def _unsupported_route(name: str, what: str) -> None:
    async def refuse(request: Request, key: ApiKey, data: Any) -> JSONResponse:
        raise _not_supported(what)

    submit_route(name, *(("edit",) if name == "edits" else ()))(refuse)


for _name, _what in _UNSUPPORTED.items():
    _unsupported_route(_name, _what)


@api.post("/insight-face/swap")
async def face_swap(request: Request) -> JSONResponse:
    await _authenticate(request)
    return _failure(_not_supported("Face swap (insight-face)"), None)


# --------------------------------------------------------------------------- task routes


@api.get("/task/{task_id}/fetch")
async def fetch(request: Request, task_id: str) -> Response:
    key = await _authenticate(request)
    try:
        task = await ctx(request).service.get(key, task_id)
    except TaskError as err:
        if err.code is ErrorCode.NOT_FOUND:  # NZK/TAO: HTTP 200 and no task (null)
            return JSONResponse(None)
        raise
    return JSONResponse(render(ctx(request), task))


@api.post("/task/list-by-condition")
@api.post("/task/list-by-ids")
async def list_by_condition(request: Request) -> JSONResponse:
    key = await _authenticate(request)
    data = await read_json(request) if (await request.body()).strip() else None
    body = parse_model(ListBody, data if data is not None else {})  # TAO: no ids → []
    ids = [i.strip() for i in body.ids or [] if i and i.strip()]
    tasks = await ctx(request).service.get_many(key, ids)  # one batched read, missing ids omitted
    context = ctx(request)
    return JSONResponse([render(context, t) for t in tasks])


@api.get("/task/list")
async def list_tasks(request: Request) -> JSONResponse:
    key = await _authenticate(request)
    tasks, _ = await ctx(request).service.list(key, limit=LIST_LIMIT)
    context = ctx(request)
    return JSONResponse([render(context, t) for t in tasks])


@api.get("/task/queue")
async def queue(request: Request, page: int = 1, pageSize: int = QUEUE_PAGE) -> JSONResponse:  # noqa: N803
    """NZK: the tasks still waiting or running (this key's), oldest first. Paged: `page` (from 1)
    and `pageSize` (up to 1000); the whole count is in the X-Total-Count header."""
    key = await _authenticate(request)
    if not 1 <= page <= 1_000_000 or not 1 <= pageSize <= QUEUE_PAGE:
        raise _invalid(f"page must be 1 or more and pageSize between 1 and {QUEUE_PAGE}", "pageSize")
    tasks, total = await ctx(request).service.list(
        key,
        statuses=(Status.PROCESSING.value, Status.PENDING.value),
        oldest_first=True,
        limit=pageSize,
        offset=(page - 1) * pageSize,
    )
    context = ctx(request)
    return JSONResponse([render(context, t) for t in tasks], headers={"X-Total-Count": str(total)})


@api.post("/task/{task_id}/cancel")
async def cancel(request: Request, task_id: str) -> JSONResponse:
    key = await _authenticate(request)
    service = ctx(request).service
    task = await service.get(key, task_id)
    if task.status is Status.MODAL:
        done = await service.close_modal(key, task_id)
        task = done or await service.get(key, task_id)
    elif not task.status.terminal:
        task = await service.cancel(key, task_id)
    if task.status is Status.CANCELLED:
        return JSONResponse(_result(Code.SUCCESS, "Cancelled (取消任务)", task.id))
    state = _STATUS.get(task.status, task.status.value)
    return JSONResponse(
        _result(Code.VALIDATION_ERROR, f"Task {task.id} is {state} and cannot be cancelled", task.id)
    )


@api.get("/task/{task_id}/image-seed")
async def image_seed_route(request: Request, task_id: str) -> JSONResponse:
    key = await _authenticate(request)
    try:
        task = await ctx(request).service.get(key, task_id)
    except TaskError as err:
        if err.code is ErrorCode.NOT_FOUND:
            return JSONResponse(
                _result(Code.NOT_FOUND, f"Task not found: {task_id} (关联任务不存在或已失效)"), 404
            )
        raise
    if task.status is not Status.COMPLETED:  # TAO: 400, "关联任务状态错误"
        msg = f"Task {task_id} has no image yet ({_STATUS.get(task.status)}) (关联任务状态错误)"
        return JSONResponse(_result(Code.VALIDATION_ERROR, msg), 400)
    return JSONResponse(_result(Code.SUCCESS, "Success", str(image_seed(task))))


router.include_router(api)
for _prefix in SPEED_PREFIXES:
    router.include_router(api, prefix=f"/{_prefix}")
