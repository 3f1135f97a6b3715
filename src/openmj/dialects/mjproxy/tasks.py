"""midjourney-proxy's /mj/task/* routes: fetch, the bulk reads relays poll, queue, cancel, seed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from openmj.core.tasks import ErrorCode, Status, TaskError
from openmj.dialects.common import ctx, invalid, parse_model, read_json, render_each, render_ids
from openmj.dialects.mjproxy.render import STATUS, TaskJson, image_seed, placeholder, render
from openmj.dialects.mjproxy.wire import Code, ListBody, SubmitResult, authenticate, result
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

LIST_LIMIT = 100  # TAO /mj/task/list: "the latest 100 tasks"
QUEUE_PAGE = 1000  # /mj/task/queue page size: the default per-key limit of unfinished tasks
router = APIRouter()


class TaskList(BaseModel):
    tasks: list[TaskJson]


def _doc(body: type[BaseModel] | None = None, ok: type[BaseModel] | None = SubmitResult) -> dict[str, Any]:
    return documented(body, errors=SubmitResult, statuses=(400, 401, 404, 429), ok=ok)


@router.get("/task/{task_id}/fetch", **_doc(ok=TaskJson))
async def fetch(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    try:
        task = await ctx(request).service.get(key, task_id)
    except TaskError as err:
        if err.code is ErrorCode.NOT_FOUND:  # NZK/TAO: HTTP 200 and no task (null)
            return JSONResponse(None)
        raise
    return JSONResponse(render(ctx(request), task))


@router.post("/task/list-by-condition", **_doc(ListBody, None))
@router.post("/task/list-by-ids", **_doc(ListBody, None))
async def list_by_condition(request: Request) -> Response:
    key = await authenticate(request)
    data = await read_json(request) if (await request.body()).strip() else None
    body = parse_model(ListBody, data if data is not None else {})  # TAO: no ids → []
    ids = [i.strip() for i in body.ids or [] if i and i.strip()]
    context = ctx(request)
    # batched reads, missing ids omitted; finished tasks rendered once (relays poll every few s)
    array = await render_ids(request, key, ids, "mjproxy", lambda t: render(context, t), placeholder)
    return Response(array, media_type="application/json")


@router.get("/task/list", **_doc(ok=None))
async def list_tasks(request: Request) -> JSONResponse:
    key = await authenticate(request)
    tasks, _ = await ctx(request).service.list(key, limit=LIST_LIMIT)
    context = ctx(request)
    return JSONResponse(render_each(tasks, lambda t: render(context, t), placeholder))


@router.get("/task/queue", **_doc(ok=None))
async def queue(request: Request, page: int = 1, pageSize: int = QUEUE_PAGE) -> JSONResponse:  # noqa: N803
    """NZK: the tasks still waiting or running (this key's), oldest first. Paged: `page` (from 1)
    and `pageSize` (up to 1000); the whole count is in the X-Total-Count header."""
    key = await authenticate(request)
    if not 1 <= page <= 1_000_000 or not 1 <= pageSize <= QUEUE_PAGE:
        raise invalid(f"page must be 1 or more and pageSize between 1 and {QUEUE_PAGE}", "pageSize")
    tasks, total = await ctx(request).service.list(
        key,
        statuses=(Status.PROCESSING.value, Status.PENDING.value),
        oldest_first=True,
        limit=pageSize,
        offset=(page - 1) * pageSize,
    )
    context = ctx(request)
    rendered = render_each(tasks, lambda t: render(context, t), placeholder)
    return JSONResponse(rendered, headers={"X-Total-Count": str(total)})


@router.post("/task/{task_id}/cancel", **_doc())
async def cancel(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    service = ctx(request).service
    task = await service.get(key, task_id)
    if not task.status.terminal:  # pending, running, or a modal waiting for its input
        task = await service.cancel(key, task_id)
    if task.status is Status.CANCELLED:
        return JSONResponse(result(Code.SUCCESS, "Cancelled (取消任务)", task.id))
    state = STATUS.get(task.status, task.status.value)
    return JSONResponse(
        result(Code.VALIDATION_ERROR, f"Task {task.id} is {state} and cannot be cancelled", task.id)
    )


@router.get("/task/{task_id}/image-seed", **_doc())
async def image_seed_route(request: Request, task_id: str) -> JSONResponse:
    key = await authenticate(request)
    try:
        task = await ctx(request).service.get(key, task_id)
    except TaskError as err:
        if err.code is ErrorCode.NOT_FOUND:
            return JSONResponse(
                result(Code.NOT_FOUND, f"Task not found: {task_id} (关联任务不存在或已失效)"), 404
            )
        raise
    if task.status is not Status.COMPLETED:  # TAO: 400, "关联任务状态错误"
        msg = f"Task {task_id} has no image yet ({STATUS.get(task.status)}) (关联任务状态错误)"
        return JSONResponse(result(Code.VALIDATION_ERROR, msg), 400)
    return JSONResponse(result(Code.SUCCESS, "Success", str(image_seed(task))))
