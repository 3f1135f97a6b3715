"""midjourney-proxy on the wire: result codes, bodies, the keys it accepts, images in requests.

docs/api/midjourney-proxy.md. The open API that novicezk (NZK) started and trueai-org (TAO)
extended; new-api and one-hub relay it, so it also behaves as those relays expect from an
upstream: SubmitResultVO with HTTP 200, code 1 for every accepted task.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from openmj.core.accounts import ApiKey
from openmj.core.tasks import ErrorCode, Speed, TaskError
from openmj.dialects.common import callback_url, ctx, invalid, retry_after, strip_bearer
from openmj.jsonwire import JSONResponse
from openmj.net import ImageFetchError, decode_data_uri, sniff_format

DIALECT = "mjproxy"
MODEL = "midjourney"  # the API has no model field; the name key model lists and prices see
SPEED_PREFIXES = {"mj-fast": Speed.FAST, "mj-turbo": Speed.TURBO, "mj-relax": Speed.RELAX}


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
HTTP_LEVEL = frozenset(
    {
        ErrorCode.UNAUTHORIZED,
        ErrorCode.KEY_DISABLED,
        ErrorCode.KEY_EXPIRED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.REQUEST_TOO_LARGE,
    }
)


class SubmitResult(BaseModel):
    """SubmitResultVO: every submit's answer (HTTP 200) and every error's body."""

    code: int = Field(
        description="1 accepted, 3 not found, 4 invalid, 9 failure, 21 modal, 23 queue full, 24 banned"
    )
    description: str
    result: Any = None
    properties: dict[str, Any] = Field(default_factory=dict)


def mj_code(err: TaskError) -> int:
    if err.code is ErrorCode.CONTENT_POLICY and "banned_word" in err.extra:
        return Code.BANNED_PROMPT
    if err.http_status >= 500:
        return Code.FAILURE
    return _CODES.get(err.code, Code.VALIDATION_ERROR)


def result(
    code: int, description: str, value: Any = None, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"code": code, "description": description, "result": value, "properties": properties or {}}


def error_response(err: TaskError) -> JSONResponse:
    """Errors outside a submit (auth, unknown route, body too large, read routes): the natural
    HTTP status with a SubmitResultVO body, so clients that read `code`/`description` still can."""
    return JSONResponse(
        result(mj_code(err), err.message), status_code=err.http_status, headers=retry_after(err)
    )


def failure(err: TaskError, prompt: str | None) -> JSONResponse:
    """A refused submit: HTTP 200 with the code in the body, as NZK answers (relays read the body)."""
    properties: dict[str, Any] = {}
    code = mj_code(err)
    if code == Code.BANNED_PROMPT:
        english = err.extra.get("prompt_en") or prompt or ""  # the translation, when it was translated
        properties = {"promptEn": english, "bannedWord": err.extra["banned_word"]}
    return JSONResponse(result(code, err.message, None, properties))


def not_supported(what: str) -> TaskError:
    return TaskError(ErrorCode.NOT_SUPPORTED, f"{what} is not supported by openmj yet", 400)


# --------------------------------------------------------------------------- keys and speed


def _secrets(request: Request) -> list[str]:
    """Authorization (raw or Bearer, TAO and relays) first, then mj-api-secret (NZK). A literal
    "midjourney-proxy" Authorization is what relays send when no key is set: skip it."""
    auth = strip_bearer(request.headers.get("authorization", ""))
    secret = request.headers.get("mj-api-secret", "").strip()
    return list(dict.fromkeys(s for s in (auth, secret) if s and s != "midjourney-proxy"))


async def authenticate(request: Request) -> ApiKey:
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


def forced_speed(request: Request) -> Speed | None:
    """/mj-fast/mj/…, /mj-turbo/mj/…, /mj-relax/mj/… force the speed (TAO routes)."""
    first = request.url.path.lstrip("/").split("/", 1)[0]
    return SPEED_PREFIXES.get(first)


# --------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    # unknown keys (accountFilter, botType on actions…) are ignored; numeric ids become strings
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    state: Any = Field(default=None, description="echoed back as a string on the task")
    notifyHook: str | None = Field(default=None, description="https URL called on every change")


class ImagineBody(_Body):
    prompt: str | None = None
    base64Array: list[str] | None = Field(default=None, description="image prompts, data URLs or base64")
    botType: str | None = Field(default=None, description="MID_JOURNEY (default) or NIJI_JOURNEY")


class ChangeBody(_Body):
    taskId: str | None = None
    action: str | None = Field(default=None, description="UPSCALE, VARIATION or REROLL")
    index: int | None = Field(default=None, description="image 1–4")


class SimpleChangeBody(_Body):
    content: str | None = Field(
        default=None, description="'<taskId> U1–U4', '<taskId> V1–V4' or '<taskId> R'"
    )


class ActionBody(_Body):
    taskId: str | None = None
    customId: str | None = Field(default=None, description="a button's customId from the task's buttons")
    enableRemix: bool | None = None
    strong: bool | None = None


class ModalBody(_Body):
    taskId: str | None = None
    prompt: str | None = None
    maskBase64: str | None = None


class BlendBody(_Body):
    base64Array: list[str] | None = None
    dimensions: str | None = Field(default=None, description="PORTRAIT, SQUARE or LANDSCAPE")
    botType: str | None = None


class RetextureBody(_Body):
    prompt: str | None = None
    image: str | None = Field(default=None, description="an image URL or base64")
    botType: str | None = None


class DescribeBody(_Body):
    base64: str | None = None
    link: str | None = None
    botType: str | None = None


class ShortenBody(_Body):
    prompt: str | None = None
    botType: str | None = None


class VideoBody(_Body):
    """POST /mj/submit/video (TAO's SubmitVideoDTO)."""

    prompt: str | None = None
    motion: Any = Field(default=None, description="low (default) or high")
    image: str | None = Field(default=None, description="the first frame: URL or base64")
    endImage: str | None = Field(default=None, description="the last frame: URL or base64")
    loop: Any = Field(default=None, description="end on the first frame")
    action: str | None = Field(default=None, description='"extend" to continue a clip of taskId')
    index: Any = Field(default=None, description="extend: the clip, 0–3")
    taskId: str | None = None
    videoType: str | None = Field(default=None, description="vid_1.1_i2v_480 (default) or vid_1.1_i2v_720")
    batchSize: Any = Field(default=None, description="1, 2 or 4 (default 4)")


class ListBody(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    ids: list[str] | None = None


def state_text(value: Any) -> str:
    """`state` is a string in every implementation (NZK String, new-api string): keep others as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def notify_url(request: Request, url: str | None) -> str | None:
    # the deliverer posts https only, so an http notifyHook is refused at submit rather than
    # accepted and silently never called (NZK/TAO accept http)
    return callback_url(request, url, "notifyHook")


def image_data_uri(value: Any, where: str, request: Request) -> str:
    """A base64 image as a data: URI. TAO wants data URLs; raw base64 is accepted too."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{where} must be a base64 image (base64格式错误)", where)
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
        raise invalid(f"{where} is not a valid base64 image (base64格式错误): {exc}", where) from exc
    fmt = sniff_format(data)
    if fmt is None:
        raise invalid(f"{where} is not a PNG, JPEG, GIF or WebP image (base64格式错误)", where)
    return text if text[:5].lower() == "data:" else f"data:image/{fmt.lower()};base64,{text}"


def image_ref(value: Any, where: str, request: Request) -> str:
    """An image given as a URL or as base64 (TAO `image` fields)."""
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return image_data_uri(value, where, request)


def request_record(body: _Body, **extra: Any) -> dict[str, Any]:
    """What the task keeps of the wire body (TaskRequest.raw_request): the fields a Task JSON
    echoes. Images are not kept here (they are in the spec already)."""
    return {"state": state_text(body.state), **{k: v for k, v in extra.items() if v is not None}}
