"""Which dialect's envelope an error gets: decided by the request path."""

from __future__ import annotations

import re
from collections.abc import Callable

from openmj.core.tasks import TaskError
from openmj.jsonwire import JSONResponse

Renderer = Callable[[TaskError], JSONResponse]
_RENDERERS: list[tuple[re.Pattern[str], Renderer]] = []


def register(pattern: str, renderer: Renderer) -> None:
    _RENDERERS.append((re.compile(pattern), renderer))


def _plain(err: TaskError) -> JSONResponse:
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    return JSONResponse(
        {"error": {"code": err.code.value, "message": err.message}}, err.http_status, headers=headers
    )


def render_error(path: str, err: TaskError) -> JSONResponse:
    for pattern, renderer in _RENDERERS:
        if pattern.match(path):
            return renderer(err)
    return _plain(err)
