"""EvoLink's error envelope: `{"error": {"code", "message", "type", "param"?}}` with the real
HTTP status (docs/api/evolink.md, "Errors")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from openmj.core.tasks import ErrorCode, TaskError
from openmj.dialects.common import retry_after
from openmj.jsonwire import JSONResponse

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large_error",
    429: "rate_limit_error",
}
#: core code → EvoLink's HTTP error.code where it names one
_HTTP_CODES = {
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.INSUFFICIENT_QUOTA: "insufficient_quota",
    ErrorCode.RATE_LIMITED: "rate_limit_exceeded",
    ErrorCode.TOO_MANY_TASKS: "rate_limit_exceeded",
    ErrorCode.QUEUE_FULL: "rate_limit_exceeded",
    ErrorCode.INVALID_PARAMETERS: "invalid_request",
    ErrorCode.INVALID_PROMPT: "invalid_request",
    ErrorCode.TASK_NOT_READY: "invalid_request",
    ErrorCode.NOT_SUPPORTED: "invalid_request",
    ErrorCode.NOT_FOUND: "task_not_found",
}
#: core code → EvoLink task error.code (a failed task's `error`)
TASK_CODES = {
    ErrorCode.IMAGE_TOO_LARGE.value: "image_processing_error",
    ErrorCode.UNSUPPORTED_FORMAT.value: "image_processing_error",
    ErrorCode.INVALID_IMAGE_URL.value: "image_processing_error",
    ErrorCode.GENERATION_FAILED.value: "service_error",
    ErrorCode.INVALID_PROMPT.value: "invalid_parameters",
    ErrorCode.INVALID_REQUEST.value: "invalid_parameters",
}
STATUSES = (400, 401, 402, 403, 404, 413, 429)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # quota details: estimated_credits, …
    code: str
    message: str
    type: str
    param: str | None = None


class EvoLinkError(BaseModel):
    error: ErrorDetail


def error_response(err: TaskError) -> JSONResponse:
    status = err.http_status
    body: dict[str, Any] = {
        "code": _HTTP_CODES.get(err.code, err.code.value),
        "message": err.message,
        "type": _TYPES.get(status, "api_error"),
    }
    if err.param:
        body["param"] = err.param
    body |= err.extra
    return JSONResponse({"error": body}, status_code=status, headers=retry_after(err))
