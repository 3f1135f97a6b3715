"""APIXO's envelope `{code, message, data}` with the real HTTP status (docs/api/apixo.md)."""

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

#: core codes whose natural HTTP status is not APIXO's (api-dialects.md §3.5: 400 401 402 403 404 429 500 503,
#: plus 413 for a body over the size limit, in the same envelope)
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.KEY_DISABLED: 401,
    ErrorCode.KEY_EXPIRED: 401,
    ErrorCode.CONTENT_POLICY: 403,
}
_MESSAGES = {
    400: "Invalid request",
    401: "Unauthorized",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not found",
    413: "Payload too large",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}


def error_response(err: TaskError) -> JSONResponse:
    status = _STATUS.get(err.code, err.http_status)
    if status not in _MESSAGES:  # 405, 413, …: APIXO documents none of them
        status = 500 if status >= 500 else 400
    # api-dialects.md §3.5: {"code":400,"message":"Invalid request","data":{"error":"Missing field: …"}}
    body = {"code": status, "message": _MESSAGES[status], "data": {"error": err.message}}
    return JSONResponse(body, status_code=status, headers=retry_after(err))


class ApixoEnvelope(BaseModel):
    """Every APIXO answer; errors carry `data.error` and the real HTTP status as `code`."""

    code: int
    message: str
    data: Any = None


def _doc(body: type[BaseModel] | None = None) -> dict[str, Any]:
    return documented(
        body, errors=ApixoEnvelope, statuses=(400, 401, 402, 403, 404, 413, 429), ok=ApixoEnvelope
    )


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})
