"""midjourney-proxy: /mj/submit/*, /mj/task/* (and the /mj-fast, /mj-turbo, /mj-relax prefixes).

docs/api/midjourney-proxy.md. Thin: wire JSON ⇄ core types, in small modules: `wire` (codes,
bodies, keys), `custom_id` (button ids → actions), `render` (Task JSON, buttons), `routes` (what
every submit route shares), `submit`, `words` (describe, shorten) and `tasks` (the routes).
"""

from __future__ import annotations

from fastapi import APIRouter

from openmj.dialects.common import Dialect
from openmj.dialects.mjproxy import submit, tasks
from openmj.dialects.mjproxy.custom_id import parse_custom_id
from openmj.dialects.mjproxy.render import buttons, callback_payload, render
from openmj.dialects.mjproxy.wire import DIALECT, SPEED_PREFIXES, error_response, failure, mj_code

TAG = "midjourney-proxy"
api = APIRouter(prefix="/mj")
api.include_router(submit.router)
api.include_router(tasks.router)
router = APIRouter(tags=[TAG])
router.include_router(api)
for _prefix in SPEED_PREFIXES:  # the same routes, forcing a speed (documented once, under /mj)
    router.include_router(api, prefix=f"/{_prefix}", include_in_schema=False)

_failure = failure  # the name older callers use

PATHS = r"^/(mj-(fast|turbo|relax)/)?mj/"
DIALECT_RECORD = Dialect(DIALECT, TAG, router, PATHS, error_response, callback_payload)

__all__ = [
    "DIALECT_RECORD",
    "buttons",
    "callback_payload",
    "error_response",
    "failure",
    "mj_code",
    "parse_custom_id",
    "render",
    "router",
]
