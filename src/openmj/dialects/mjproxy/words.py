"""midjourney-proxy's describe and shorten routes, and the buttons under their words
(PicReader N, Picread Retry, PromptAnalyzer N): core/words.py has the rules."""

from __future__ import annotations

from fastapi import Request

from openmj.core import words
from openmj.core.accounts import ApiKey
from openmj.core.followups import followup_speed
from openmj.core.tasks import Operation, Speed, Task, TaskRequest
from openmj.dialects.common import ctx, invalid
from openmj.dialects.mjproxy.custom_id import Action
from openmj.dialects.mjproxy.render import bot_type, model_of
from openmj.dialects.mjproxy.routes import parse_prompt, prompted, submit_route, submit_task, task_request
from openmj.dialects.mjproxy.wire import (
    ActionBody,
    DescribeBody,
    ShortenBody,
    forced_speed,
    image_data_uri,
    image_ref,
    request_record,
)
from openmj.jsonwire import JSONResponse


def from_words(request: Request, parent: Task, act: Action, body: ActionBody) -> TaskRequest:
    """PicReader N / PromptAnalyzer N: imagine that prompt of a describe or shorten; Picread
    Retry: describe the same image again (a new task, so new seeds)."""
    speed = forced_speed(request) or followup_speed(parent)
    record = request_record(body, customId=(body.customId or "").strip())
    if act.operation is Operation.DESCRIBE:
        req = task_request(
            request, body, Operation.DESCRIBE, speed=speed, params=words.describe_again(parent)
        )
        req.raw_request = record
        return req
    text = words.chosen_prompt(parent, act.index, act.params["words"])
    parsed, _ = parse_prompt(text, bot_type(parent))
    req = task_request(
        request,
        body,
        Operation.IMAGINE,
        prompt=text,
        parsed=parsed,
        speed=speed,
        prompt_version=model_of(parent),
    )
    req.raw_request = record | {"botType": bot_type(parent)}
    return req


@submit_route("describe", DescribeBody)
async def describe(request: Request, key: ApiKey, body: DescribeBody) -> JSONResponse:
    ctx(request).service.require_capability(Operation.DESCRIBE)
    if body.base64 and body.base64.strip():
        image = image_data_uri(body.base64, "base64", request)
    elif body.link and body.link.strip():
        image = image_ref(body.link, "link", request)
    else:
        raise invalid("base64 (a data URL) or link is required (base64不能为空)", "base64")
    req = task_request(
        request,
        body,
        Operation.DESCRIBE,
        speed=forced_speed(request) or Speed.FAST,
        params={"image_url": image},
    )
    req.raw_request = request_record(body, botType=body.botType)
    return await submit_task(request, key, req)


@submit_route("shorten", ShortenBody)
async def shorten(request: Request, key: ApiKey, body: ShortenBody) -> JSONResponse:
    return await submit_task(request, key, await prompted(request, body, Operation.SHORTEN, {}))
