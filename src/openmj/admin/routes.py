"""The operator's JSON API under /admin/api, behind `OPENMJ_ADMIN_TOKEN` (a Bearer token).

Every call is refused without the token: 401 when it is missing or wrong, 403 when no token is
configured (the admin API is then off, and says so). It adds no rule: keys are created by
`openmj.accounts.create_key` and changed by the repository methods `openmj keys` uses.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from openmj.accounts import create_key
from openmj.core.accounts import ApiKey
from openmj.core.tasks import ErrorCode, Status, Task, TaskError
from openmj.dialects.common import bearer, parse_model, read_json
from openmj.jsonwire import JSONResponse
from openmj.store.browse import Browser, update_key_limits
from openmj.store.repo import Repository

FAILED_SHOWN = 20
PAGE = 20
LAST_PAGE = 1_000_000
Limit = int | None


def require_admin(request: Request) -> None:
    """The operator's token, compared in constant time."""
    token = request.app.state.runtime.settings.admin_token
    if not token:
        raise TaskError(
            ErrorCode.NOT_SUPPORTED, "The admin API is off: start openmj with OPENMJ_ADMIN_TOKEN set", 403
        )
    sent = bearer(request)
    if not sent or not hmac.compare_digest(sent.encode(), token.encode()):
        raise TaskError(
            ErrorCode.UNAUTHORIZED, "Admin token missing or wrong: send 'Authorization: Bearer <token>'", 401
        )


router = APIRouter(prefix="/admin/api", include_in_schema=False, dependencies=[Depends(require_admin)])


class NewKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    credits: float | None = Field(default=None, ge=0, le=1e12)
    group: str = Field(default="default", min_length=1, max_length=64)
    models: list[str] | None = None
    rpm: Limit = Field(default=None, ge=1, le=10_000_000)
    concurrency: Limit = Field(default=None, ge=1, le=10_000_000)


class KeyChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    group: str | None = Field(default=None, min_length=1, max_length=64)
    models: list[str] | None = None
    rpm: Limit = Field(default=None, ge=1, le=10_000_000)
    concurrency: Limit = Field(default=None, ge=1, le=10_000_000)
    disabled: bool | None = None


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: float = Field(ge=-1e12, le=1e12)


def _repo(request: Request) -> Repository:
    repo: Repository = request.app.state.runtime.repo
    return repo


def _browser(request: Request) -> Browser:
    return Browser(request.app.state.runtime.db)


def key_json(key: ApiKey) -> dict[str, Any]:
    return asdict(key)  # the hash is not in ApiKey: nothing secret leaves


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "owner": task.owner,
        "operation": task.operation.value,
        "status": task.status.value,
        "prompt": task.prompt,
        "speed": task.speed.value,
        "progress": task.progress,
        "parentId": task.parent_id,
        "createdAt": task.created_at,
        "finishedAt": task.finished_at,
        "credits": task.credits_charged or task.credits_reserved,
        "errorCode": task.error_code,
        "errorMessage": task.error_message,
    }


def _page(page: int) -> int:
    if not 1 <= page <= LAST_PAGE:
        raise TaskError(ErrorCode.INVALID_PARAMETERS, f"page must be between 1 and {LAST_PAGE}", 400)
    return page


async def _key(request: Request, key_id: str) -> ApiKey:
    found = await _repo(request).key_by_id_or_prefix(key_id)
    if found is None:
        raise TaskError(ErrorCode.NOT_FOUND, f"No such key: {key_id}", 404)
    return found


@router.get("/keys")
async def list_keys(request: Request) -> JSONResponse:
    return JSONResponse({"keys": [key_json(k) for k in await _repo(request).list_keys()]})


@router.post("/keys")
async def new_key(request: Request) -> JSONResponse:
    body = parse_model(NewKeyBody, await read_json(request))
    settings = request.app.state.runtime.settings
    models = [m.strip() for m in body.models if m.strip()] if body.models else None
    made = await create_key(
        _repo(request),
        credits=settings.initial_key_credits if body.credits is None else body.credits,
        name=body.name,
        group=body.group,
        models=models,
        rpm=body.rpm,
        concurrency=body.concurrency,
    )
    # the secret is shown once, here, as `openmj keys create` prints it once
    return JSONResponse({"key": key_json(made.key), "secret": made.secret}, 201)


@router.patch("/keys/{key_id}")
async def change_key(request: Request, key_id: str) -> JSONResponse:
    data = await read_json(request)
    body = parse_model(KeyChangeBody, data)
    key = await _key(request, key_id)
    changes = {k: getattr(body, k) for k in ("name", "group", "models", "rpm", "concurrency") if k in data}
    if changes:
        await update_key_limits(request.app.state.runtime.db, key.id, changes)
    if body.disabled is not None:
        await _repo(request).set_disabled(key.id, body.disabled)
    return JSONResponse({"key": key_json(await _key(request, key.id))})


@router.post("/keys/{key_id}/grant")
async def grant(request: Request, key_id: str) -> JSONResponse:
    body = parse_model(GrantBody, await read_json(request))
    key = await _key(request, key_id)
    balance = await _repo(request).grant(key.id, body.amount)
    return JSONResponse({"id": key.id, "credits": balance})


@router.get("/keys/{key_id}/ledger")
async def ledger(request: Request, key_id: str, page: int = 1) -> JSONResponse:
    key = await _key(request, key_id)
    offset = (_page(page) - 1) * PAGE * 5
    entries = await _browser(request).ledger(key.id, limit=PAGE * 5, offset=offset)
    return JSONResponse({"id": key.id, "credits": key.credits, "entries": [asdict(e) for e in entries]})


@router.get("/keys/{key_id}/tasks")
async def key_tasks(request: Request, key_id: str, page: int = 1, q: str = "") -> JSONResponse:
    key = await _key(request, key_id)
    tasks, total = await _browser(request).search_tasks(
        key.id, q[:200], limit=PAGE, offset=(_page(page) - 1) * PAGE
    )
    return JSONResponse({"total": total, "page": _page(page), "tasks": [task_json(t) for t in tasks]})


@router.get("/queue")
async def queue(request: Request) -> JSONResponse:
    browser = _browser(request)
    state = await browser.queue_state()
    failed, _ = await browser.search_tasks(None, limit=FAILED_SHOWN, status=Status.FAILED.value)
    running, _ = await browser.search_tasks(None, limit=FAILED_SHOWN, status=Status.PROCESSING.value)
    return JSONResponse(
        {
            "depth": sum(state.pending_by_priority.values()),
            "pendingByPriority": {str(p): n for p, n in sorted(state.pending_by_priority.items())},
            "running": state.processing,
            "failedTotal": state.failed,
            "counts": state.counts,
            "runningTasks": [task_json(t) for t in running],
            "failed": [task_json(t) for t in failed],
        }
    )


@router.get("/workers")
async def workers(request: Request) -> JSONResponse:
    """The live worker processes of the registry (docs/deployment.md, "Which models are served")."""
    nodes = await request.app.state.runtime.live_workers.nodes()
    return JSONResponse(
        {
            "workers": [
                {
                    "id": n.id,
                    "host": n.host,
                    "pid": n.pid,
                    "models": list(n.models),
                    "operations": sorted(n.operations),
                    "workers": n.workers,
                    "running": n.running,
                    "draining": n.draining,
                    "startedAt": n.started_at,
                    "lastSeen": n.last_seen,
                }
                for n in nodes
            ]
        }
    )


@router.get("/providers")
async def providers(request: Request) -> JSONResponse:
    """The relay's providers, keys never shown (only whether one is set)."""
    path = request.app.state.runtime.settings.providers_file
    if path is None:
        return JSONResponse({"relay": False, "providers": []})
    import time

    from openmj.relay.providers import load_providers
    from openmj.store.health import cooling

    runtime = request.app.state.runtime
    cool = await cooling(runtime.db, time.time())  # what every gateway node sees (docs/relay.md)
    rows = []
    for p in load_providers(path):
        rows.append(
            {
                "name": p.name,
                "dialect": str(p.dialect),
                "baseUrl": p.base_url,
                "priority": p.priority,
                "weight": p.weight,
                "operations": sorted(o.value for o in p.serves) if p.dialect != "local" else None,
                "key": "set" if getattr(p, "secret", None) else ("-" if p.dialect == "local" else "missing"),
                "coolingUntil": cool[p.name][0] if p.name in cool else None,
                "coolingReason": cool[p.name][1] if p.name in cool else None,
            }
        )
    return JSONResponse({"relay": True, "providers": rows})


@router.get("/prices")
async def prices(request: Request) -> JSONResponse:
    table = request.app.state.runtime.service.prices
    return JSONResponse({"prices": dict(sorted(table.prices.items())), "groups": table.group_multipliers})
