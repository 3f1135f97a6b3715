"""The upstream's callbacks: a signed URL per relayed task on this gateway (`/relay/hooks/{id}`).

The URL is signed like a media link (HMAC over path and expiry), so only an upstream that was
given it can wake a task; the body is not read (relay/waiting.py polls the upstream instead). A
callback reaches the worker that waits on the task: in this process directly, on other nodes
through the database (PostgreSQL NOTIFY, `Repository.notify_relay`).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openmj.media.signing import UrlSigner

log = logging.getLogger("openmj.relay")

HOOK_KID = "relay"  # the signature's key id: no media link can be replayed as a hook, or back
HOOK_LIFETIME_S = 7 * 86400.0  # past any task time-out: an upstream may call back late
PATH = "/relay/hooks/{task_id}"


class HookUrls:
    def __init__(self, signer: UrlSigner) -> None:
        self.signer = signer
        self.public_https = urlsplit(signer.public_url).scheme == "https"

    def url_for(self, task_id: str, now: float | None = None) -> str:
        exp = (now if now is not None else time.time()) + HOOK_LIFETIME_S
        return self.signer.sign(PATH.format(task_id=task_id), exp, HOOK_KID)

    def verify(self, path: str, query: Any) -> bool:
        if query.get("kid") != HOOK_KID:
            return False
        return self.signer.verify(path, query.get("exp"), query.get("kid"), query.get("sig"))


router = APIRouter(include_in_schema=False)


@router.api_route(PATH, methods=["POST", "GET", "PUT"])
async def upstream_hook(request: Request, task_id: str) -> JSONResponse:
    """Any method an upstream uses; 200 whether or not the task still waits (they retry on errors)."""
    runtime = request.app.state.runtime
    hooks: HookUrls = HookUrls(request.app.state.ctx.signer)
    if not hooks.verify(request.url.path, request.query_params):
        log.warning("relay hook for %s refused: bad or expired signature", task_id)
        return JSONResponse({"code": 403, "msg": "invalid or expired callback link"}, status_code=403)
    wake = getattr(runtime.engine, "wake", None)
    woken = bool(wake(task_id)) if wake is not None else False
    if not woken and runtime.repo is not None:
        await runtime.repo.notify_relay(task_id)  # a worker on another node may wait on it
    log.info("relay hook for %s (%s)", task_id, "woken here" if woken else "passed on")
    return JSONResponse({"code": 200, "msg": "ok"})


__all__ = ["HOOK_KID", "HookUrls", "router"]
