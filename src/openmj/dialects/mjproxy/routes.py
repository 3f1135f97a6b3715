"""The machinery every midjourney-proxy submit route shares: the route decorator (SubmitResultVO
refusals), building a `TaskRequest`, parsing a prompt (translated first), finding the source task."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from openmj.core.accounts import ApiKey
from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import mjproxy_prompt, mjproxy_version
from openmj.core.tasks import ErrorCode, Operation, Speed, Task, TaskError, TaskRequest
from openmj.dialects.common import ctx, idempotency_key, invalid, parse_model, prompt_error, read_json
from openmj.dialects.mjproxy.wire import (
    DIALECT,
    HTTP_LEVEL,
    MODEL,
    Code,
    ImagineBody,
    RetextureBody,
    ShortenBody,
    SubmitResult,
    _Body,
    authenticate,
    failure,
    forced_speed,
    notify_url,
    request_record,
    result,
)
from openmj.dialects.openapi import documented
from openmj.jsonwire import JSONResponse

router = APIRouter()
Handler = Callable[[Request, ApiKey, Any], Awaitable[JSONResponse]]


def submit_route(path: str, body: type[BaseModel], *aliases: str) -> Callable[[Handler], Handler]:
    """A POST /mj/submit/<path> route reading `body`: authentication errors keep their HTTP
    status; every other refusal is HTTP 200 with a SubmitResultVO code (NZK), which relays read."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> JSONResponse:
            key = await authenticate(request)
            data: Any = None
            try:
                data = await read_json(request)
                return await handler(request, key, parse_model(body, data))
            except TaskError as err:
                if err.code in HTTP_LEVEL or err.http_status >= 500:
                    raise
                prompt = data.get("prompt") if isinstance(data, dict) else None
                return failure(err, prompt if isinstance(prompt, str) else None)

        doc = documented(body, errors=SubmitResult, statuses=(401, 413, 429), ok=SubmitResult)
        for name in (path, *aliases):
            router.add_api_route(
                f"/submit/{name}", endpoint, methods=["POST"], name=f"mj_submit_{name}", **doc
            )
        return handler

    return register


def accepted(task: Task) -> JSONResponse:
    return JSONResponse(result(Code.SUCCESS, "Submit success", task.id))


async def submit_task(request: Request, key: ApiKey, req: TaskRequest) -> JSONResponse:
    return accepted(await ctx(request).service.submit(key, req, idempotency_key(request)))


def parse_prompt(text: str, bot: str | None) -> tuple[dict[str, Any], Speed]:
    try:
        parsed, speed = mjproxy_prompt(text, bot)
    except PromptError as exc:
        raise prompt_error(exc) from exc
    return parsed.to_dict(), Speed(speed)


async def parent_task(request: Request, key: ApiKey, task_id: str | None) -> Task:
    if not task_id or not task_id.strip():
        raise invalid("taskId is required (taskId不能为空)", "taskId")
    try:
        return await ctx(request).service.get(key, task_id.strip())
    except TaskError as err:
        if err.code is not ErrorCode.NOT_FOUND:
            raise
        message = f"Task not found or expired: {task_id.strip()} (关联任务不存在或已失效)"
        raise TaskError(ErrorCode.NOT_FOUND, message, 404, param="taskId") from err


def task_request(request: Request, body: _Body, operation: Operation, **fields: Any) -> TaskRequest:
    return TaskRequest(
        operation=operation,
        model=MODEL,
        dialect=DIALECT,
        callback_url=notify_url(request, body.notifyHook),
        index_field="index",  # this API numbers images from 1
        index_base=1,
        **fields,
    )


async def prompted(
    request: Request,
    body: ImagineBody | RetextureBody | ShortenBody,
    operation: Operation,
    params: dict[str, Any],
) -> TaskRequest:
    """A task from a prompt as on Discord: the text is required, `--fast` & co pick the mode; a
    CJK prompt is translated first, as midjourney-proxy deployments do (`promptEn` shows it)."""
    text = (body.prompt or "").strip()
    if not text:
        raise TaskError(ErrorCode.INVALID_PROMPT, "prompt is required (prompt不能为空)", 400, param="prompt")
    english = await ctx(request).service.english(text)
    parsed, speed = parse_prompt(english.text, body.botType)
    req = task_request(
        request,
        body,
        operation,
        prompt=text,
        parsed=parsed,
        speed=forced_speed(request) or speed,
        params=params,
        prompt_version=mjproxy_version(body.botType),
        translation=english.record,
    )
    req.raw_request = request_record(body, botType=body.botType)
    return req
