"""The /media route's answer from an S3 store: the object streamed (a Range gets 206 with exactly
those bytes), or a 302 to the store's own presigned URL. The local store answers with FileResponse.

Every boto3 call, and each chunk read of a streamed body, runs in a thread: the loop never blocks.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from openmj.jsonwire import JSONResponse
from openmj.media.grid import GRID_NAME
from openmj.media.s3 import S3MediaStore

CHUNK = 256 * 1024
CACHE = "private, max-age=3600"
# one range only (RFC 9110 lets a server ignore the rest): "a-b", "a-" or the suffix "-n"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def single_range(header: str | None) -> str | None:
    """The Range header to pass to the store, or None to send the whole object (absent, multiple
    ranges or malformed: RFC 9110 says ignore it)."""
    if not header:
        return None
    m = _RANGE.match(header.strip().replace(" ", ""))
    if m is None or (not m[1] and not m[2]) or (m[1] and m[2] and int(m[2]) < int(m[1])):
        return None
    return f"bytes={m[1]}-{m[2]}"


def not_found() -> JSONResponse:
    return JSONResponse({"error": {"code": "not_found", "message": "This file no longer exists"}}, 404)


def unavailable() -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "service_unavailable", "message": "The media store did not answer"}}, 503
    )


async def s3_response(
    store: S3MediaStore, task_id: str, name: str, range_header: str | None, redirect_until: float | None
) -> Response:
    """The object's answer; `redirect_until` (the link's own expiry) asks for a presigned 302."""
    if not store.valid(task_id, name):
        return not_found()
    try:
        if name == GRID_NAME and not await asyncio.to_thread(store.ensure_grid, task_id):
            return not_found()
        if redirect_until is not None:
            seconds = int(redirect_until - time.time())
            url = await asyncio.to_thread(store.presigned_url, task_id, name, seconds)
            return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
        return await _stream(store, task_id, name, single_range(range_header))
    except FileNotFoundError:
        return not_found()
    except (OSError, BotoCoreError, ClientError):
        return unavailable()


async def _stream(store: S3MediaStore, task_id: str, name: str, byte_range: str | None) -> Response:
    try:
        obj = await asyncio.to_thread(store.get, task_id, name, byte_range)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidRange":
            raise
        size = await asyncio.to_thread(store.size, task_id, name)
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE,
        "Content-Length": str(obj["ContentLength"]),
    }
    if obj.get("ETag"):
        headers["ETag"] = obj["ETag"]
    partial = bool(byte_range and obj.get("ContentRange"))
    if partial:
        headers["Content-Range"] = obj["ContentRange"]
    return StreamingResponse(
        _chunks(obj["Body"]),
        status_code=206 if partial else 200,
        media_type=obj.get("ContentType") or "application/octet-stream",
        headers=headers,
    )


async def _chunks(body: Any) -> AsyncIterator[bytes]:
    """The body in CHUNK pieces, each read in a thread; closed when done or the client leaves."""
    try:
        while chunk := await asyncio.to_thread(body.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(body.close)
