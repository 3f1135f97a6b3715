"""The studio's pages and its two read-only helpers; everything else the studio does goes through
the midjourney-proxy API (/mj/...) like any other client.

- `GET /` and `GET /admin`: the pages; `/studio/static/…`: their scripts and styles (no CDN).
- `POST /studio/api/prompt/check`: the prompt as the imagine route would parse it, for the inline
  error before submit (the same parser and the same policy, nothing stored).
- `GET /studio/api/tasks`: the key's tasks, newest first, paged, searched by prompt, each with its
  parent and children; the studio then reads them through /mj/task/list-by-condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import mjproxy_prompt
from openmj.dialects.common import authenticate, invalid, parse_model, read_json
from openmj.jsonwire import JSONResponse
from openmj.store.browse import Browser

STATIC = Path(__file__).parent / "static"
PAGE_SIZES = range(1, 101)
MAX_QUERY = 200
# the pages change with each release: revalidate, so an upgrade is seen at once. Scripts, styles
# and calls only from openmj itself; pictures and clips from wherever its links point
# (`OPENMJ_PUBLIC_URL` may name another host); never inside someone else's frame.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src * data: blob:; media-src *; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


class PromptCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(max_length=8000)
    botType: str | None = None  # noqa: N815 - the midjourney-proxy field the studio submits with


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


@router.get("/")
async def studio_page() -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/admin")
async def admin_page() -> Response:
    return FileResponse(STATIC / "admin.html", media_type="text/html", headers=PAGE_HEADERS)


@router.post("/studio/api/prompt/check")
async def check_prompt(request: Request) -> JSONResponse:
    """{ok: true, speed, normal} or {ok: false, error: {code, message}}: a refused prompt is the
    answer, not an error of this call (a malformed body is)."""
    body = parse_model(PromptCheck, await read_json(request))
    try:
        parsed, speed = mjproxy_prompt(body.prompt, body.botType)
    except PromptError as exc:
        return JSONResponse({"ok": False, "error": {"code": exc.code, "message": exc.message}})
    return JSONResponse({"ok": True, "speed": speed, "normal": parsed.to_dict()})


def _page_args(request: Request) -> tuple[str, int, int]:
    q = request.query_params
    query = q.get("q", "")
    if len(query) > MAX_QUERY:
        raise invalid(f"q must be at most {MAX_QUERY} characters", "q")
    try:
        page, size = int(q.get("page", "1")), int(q.get("size", "12"))
    except ValueError:
        raise invalid("page and size must be whole numbers", "page") from None
    if page < 1 or page > 1_000_000 or size not in PAGE_SIZES:
        raise invalid("page must be 1 or more and size between 1 and 100", "page")
    return query, page, size


@router.get("/studio/api/tasks")
async def gallery(request: Request) -> JSONResponse:
    key = await authenticate(request)
    query, page, size = _page_args(request)
    browser = Browser(request.app.state.runtime.db)
    tasks, total = await browser.search_tasks(key.id, query, limit=size, offset=(page - 1) * size)
    kids = await browser.children([t.id for t in tasks], key.id)
    items: list[dict[str, Any]] = [
        {
            "id": t.id,
            "prompt": t.prompt,
            "operation": t.operation.value,
            "status": t.status.value,
            "parentId": t.parent_id,
            "children": kids.get(t.id, []),
            "createdAt": t.created_at,
        }
        for t in tasks
    ]
    return JSONResponse({"total": total, "page": page, "size": size, "tasks": items})
