"""The APIs openmj speaks. Each is one `Dialect` record; this tuple is the only list of them.

The app mounts their routers, the error handler picks an envelope by URL path, and the callback
deliverer renders each task's callback with its dialect's payload. What a dialect changes once a
task exists (link lifetime, callback schedule, progress callbacks, banned prompts) is the core's
table `openmj.core.dialects.POLICIES`.
"""

from __future__ import annotations

from fastapi.responses import Response

from openmj.core.tasks import TaskError
from openmj.dialects import apixo, evolink, kie, mjproxy
from openmj.dialects.common import Dialect
from openmj.jsonwire import JSONResponse

#: in the order their path patterns are tried (kie's /api/v1/mj/ before APIXO's /api/v1/)
DIALECTS: tuple[Dialect, ...] = (
    evolink.DIALECT_RECORD,
    kie.DIALECT_RECORD,
    apixo.DIALECT_RECORD,
    mjproxy.DIALECT_RECORD,
)
BY_NAME = {d.name: d for d in DIALECTS}


def dialect_for_path(path: str) -> Dialect | None:
    return next((d for d in DIALECTS if d.owns(path)), None)


def render_error(path: str, err: TaskError) -> Response:
    """The error in the envelope of the API the path belongs to (a plain one elsewhere)."""
    dialect = dialect_for_path(path)
    if dialect is not None:
        return dialect.error_response(err)
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None
    body = {"error": {"code": err.code.value, "message": err.message}}
    return JSONResponse(body, err.http_status, headers=headers)


__all__ = ["BY_NAME", "DIALECTS", "Dialect", "dialect_for_path", "render_error"]
