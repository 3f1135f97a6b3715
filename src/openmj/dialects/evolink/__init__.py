"""EvoLink: POST /v1/images/generations (the model picks the operation) + /v1/tasks.

docs/api/evolink.md. Thin: wire JSON ⇄ core types (requests.py in, render.py out).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from openmj.core.tasks import Status, Task
from openmj.dialects.common import (
    Dialect,
    authenticate,
    callback_url,
    ctx,
    idempotency_key,
    invalid,
    keep_original,
    read_body,
    render_each,
    render_ids,
    translate_prompt_field,
)
from openmj.dialects.evolink.errors import STATUSES, EvoLinkError, error_response
from openmj.dialects.evolink.render import (
    TaskBatch,
    TaskList,
    TaskObject,
    callback_payload,
    placeholder,
    render_task,
)
from openmj.dialects.evolink.requests import DIALECT, MODELS, BatchBody, CreateBody, build
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

MAX_PAGE = 1_000_000  # 20 million tasks at 20 a page; beyond that an offset only overflows SQL
TAG = "EvoLink"

router = APIRouter(tags=[TAG])


def _doc(body: type | None = None, ok: type | None = None) -> dict[str, Any]:
    return documented(body, errors=EvoLinkError, statuses=STATUSES, ok=ok)


async def _with_estimate(request: Request, task: Task) -> dict[str, Any]:
    estimate = None if task.status.terminal else await ctx(request).service.estimate(task)
    return render_task(ctx(request).signer, task, estimate)


@router.post("/v1/images/generations", **_doc(CreateBody, TaskObject))
async def create(request: Request) -> JSONResponse:
    """Create a task: imagine (`mj-v7`) or an action on a finished task (`mj-v7-upscale`, …)."""
    key = await authenticate(request)
    body, _ = await read_body(request, CreateBody)
    raw = body.model_dump(exclude_none=True)
    translation = await translate_prompt_field(request, body, None)  # EvoLink has no flag: the server's scope
    req = keep_original(build(body), translation)
    req.callback_url = callback_url(request, body.callback_url, "callback_url", blank_is_none=False)
    req.raw_request = raw
    task = await ctx(request).service.submit(key, req, idempotency_key(request))
    return JSONResponse(await _with_estimate(request, task))


@router.get("/v1/tasks/{task_id}", **_doc(ok=TaskObject))
async def get_task(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    task = await ctx(request).service.get(key, task_id)
    return JSONResponse(await _with_estimate(request, task))


@router.post("/v1/tasks/{task_id}/cancel", **_doc(ok=TaskObject))
async def cancel_task(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    task = await ctx(request).service.cancel(key, task_id)
    return JSONResponse(await _with_estimate(request, task))


@router.post("/v1/tasks/batch", **_doc(BatchBody, TaskBatch))
async def batch(request: Request) -> Response:
    key = await authenticate(request)
    body, _ = await read_body(request, BatchBody)
    signer = ctx(request).signer
    array = await render_ids(
        request, key, body.task_ids, "evolink", lambda t: render_task(signer, t, None), placeholder
    )
    return Response(b'{"data":' + array + b"}", media_type="application/json")


_STATUS_FILTER = {s.value for s in Status}
_TYPE_FILTER = {"image", "video"}
_LINKS = ("results", "result_data", "grid_url")  # list items carry no result links


@router.get("/v1/tasks", **_doc(ok=TaskList))
async def list_tasks(
    request: Request,
    status: str | None = None,
    type: str | None = None,  # noqa: A002 - the wire name
    model: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> JSONResponse:
    key = await authenticate(request)
    if status is not None and status not in _STATUS_FILTER:
        raise invalid(f"Invalid status filter '{status}'", "status")
    if type is not None and type not in _TYPE_FILTER:
        raise invalid(f"Invalid type filter '{type}'", "type")
    if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= 100:
        raise invalid(f"page must be between 1 and {MAX_PAGE} and page_size between 1 and 100", "page_size")
    tasks, total = await ctx(request).service.list(
        key,
        status=status,
        video=None if type is None else type == "video",
        model=model,
        limit=page_size,
        offset=(page - 1) * page_size,
    )
    signer = ctx(request).signer

    def item(task: Task) -> dict[str, Any]:
        out = render_task(signer, task, None)
        return {k: v for k, v in out.items() if k not in _LINKS}

    return JSONResponse(
        {
            "object": "list",
            "data": render_each(tasks, item, placeholder),
            "page": page,
            "page_size": page_size,
            "total": total,
            "has_more": page * page_size < total,
        }
    )


@router.get("/v1/credits", **_doc())
async def credits(request: Request) -> JSONResponse:
    key = await authenticate(request)
    balance = await ctx(request).service.balance(key)
    wallet = {"remaining_credits": balance.remaining, "used_credits": balance.used}
    return JSONResponse(
        {"success": True, "data": {"user": wallet, "token": wallet | {"unlimited_credits": False}}}
    )


DIALECT_RECORD = Dialect(DIALECT, TAG, router, r"^/v1/", error_response, callback_payload)

__all__ = ["DIALECT_RECORD", "MODELS", "callback_payload", "error_response", "render_task", "router"]
