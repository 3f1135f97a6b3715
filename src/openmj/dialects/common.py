"""Pieces every dialect uses: reading the key and the JSON body, the shared services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from openmj import jsonwire
from openmj.core.tasks import ErrorCode, ImageResult, Task, TaskError
from openmj.media.signing import UrlSigner
from openmj.net import NetPolicy
from openmj.service import MEDIA_LIFETIME, TaskService
from openmj.store.repo import ApiKey

log = logging.getLogger("openmj.api")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Context:
    """What the dialect routers need, stored on app.state.ctx by the app's lifespan."""

    service: TaskService
    signer: UrlSigner
    net: NetPolicy


def ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return header or None


async def authenticate(request: Request, secret: str | None = None) -> ApiKey:
    key = await ctx(request).service.authenticate(secret if secret is not None else bearer(request))
    request.state.key_id = key.id
    return key


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise TaskError(ErrorCode.INVALID_REQUEST, "The request body is empty; send a JSON object", 400)
    try:
        return jsonwire.loads(raw)
    except jsonwire.JsonRefused as exc:
        raise TaskError(ErrorCode.INVALID_REQUEST, exc.message, 400) from exc


def parse_model(cls: type[M], data: Any) -> M:
    """Validate a body with pydantic; the first problem becomes a 400 naming the field."""
    if not isinstance(data, dict):
        raise TaskError(ErrorCode.INVALID_REQUEST, "The request body must be a JSON object", 400)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Invalid parameter '{loc}': {msg}", 400, param=loc
        ) from exc


def media_url(signer: UrlSigner, task: Task, image: ImageResult) -> str:
    """A signed link that expires with the task's media (set at completion by its dialect's rule)."""
    exp = task.media_expires_at or ((task.finished_at or task.created_at) + MEDIA_LIFETIME["evolink"])
    return signer.sign(f"/media/{task.id}/{image.name}", exp, task.owner)


def result_urls(signer: UrlSigner, task: Task) -> list[str]:
    return [media_url(signer, task, im) for im in task.results]
