"""apixo dialect (placeholder: being built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from openmj.core.tasks import TaskError

router = APIRouter()


def error_response(err: TaskError) -> JSONResponse:
    return JSONResponse({"code": err.http_status, "msg": err.message, "data": None}, status_code=err.http_status)
