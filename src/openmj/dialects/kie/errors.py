"""kie.ai's envelope `{code, msg, data}` and its error codes (docs/api/kie.md, "Errors")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from openmj.core.tasks import ErrorCode, TaskError
from openmj.dialects.common import (
    retry_after,
)
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

# --------------------------------------------------------------------------- errors

#: core code → kie body code (api-dialects.md §2.6: 400 400 401 402 404 422 429 455 500 501 505)
_CODES: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.KEY_DISABLED: 401,
    ErrorCode.KEY_EXPIRED: 401,
    ErrorCode.MODEL_ACCESS_DENIED: 401,
    ErrorCode.INSUFFICIENT_QUOTA: 402,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_PARAMETERS: 422,
    ErrorCode.INVALID_PROMPT: 422,
    ErrorCode.INVALID_IMAGE_URL: 422,
    ErrorCode.IMAGE_TOO_LARGE: 422,
    ErrorCode.UNSUPPORTED_FORMAT: 422,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_TASKS: 429,
    ErrorCode.QUEUE_FULL: 429,
    ErrorCode.NOT_SUPPORTED: 505,
    ErrorCode.GENERATION_FAILED: 501,
    ErrorCode.SERVICE_ERROR: 500,
}
# the codes that also set the HTTP status (api-dialects.md §2.6: auth and server faults); 413 comes from the
# body-size guard before the body is read, where a proxy in front would answer 413 as well
_REAL_HTTP = frozenset({401, 413, 500})


def kie_code(err: TaskError) -> int:
    return _CODES.get(err.code, 500 if err.http_status >= 500 else 400)


class KieEnvelope(BaseModel):
    """Every kie answer: `code` 200 on success, else the error code (HTTP 200 unless 401/413/500)."""

    code: int
    msg: str
    data: Any = None


class KieTaskId(BaseModel):
    taskId: str


class KieCreated(KieEnvelope):
    data: KieTaskId | None = None


def error_response(err: TaskError) -> JSONResponse:
    code = kie_code(err)
    return JSONResponse(
        {"code": code, "msg": err.message, "data": None},
        status_code=code if code in _REAL_HTTP else 200,
        headers=retry_after(err),
    )


def _doc(body: type[BaseModel] | None = None, ok: type[BaseModel] = KieEnvelope) -> dict[str, Any]:
    return documented(body, errors=KieEnvelope, statuses=(401, 413, 500), ok=ok)


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "msg": "success", "data": data})
