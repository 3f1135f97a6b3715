"""Callback delivery: one POST, under the same address rules as image fetching.

No redirect is followed (a 3xx is a failed delivery: following it would let a receiver bounce
our signed body to an internal address). Network problems never raise; they come back as
``DeliveryResult(ok=False, ...)`` so the outbox can schedule its retry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from openmj.net.guard import NetPolicy, UnsafeURLError, resolve_target
from openmj.net.pinned import open_pinned


@dataclass
class DeliveryResult:
    """``code`` is machine-readable: None when ok, else ``http_error``, ``redirect_not_followed``,
    ``timeout``, ``connection_failed`` or an UnsafeURLError code (``https_required``,
    ``blocked_address``, ``url_too_long``, ...)."""

    ok: bool
    status: int | None
    error: str | None
    elapsed: float
    code: str | None = None


async def post_json(
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: NetPolicy,
    *,
    timeout: float,
    https_only: bool = True,
    max_length: int = 2048,
) -> DeliveryResult:
    """POST ``body`` (already-serialised JSON) to ``url``; any 2xx is ok.

    https only unless ``policy.allow_private``; the resolved address actually connected to is
    checked; ``timeout`` bounds the whole delivery (DNS, connect, send, response headers).
    """
    start = time.monotonic()

    def result(ok: bool, status: int | None, code: str | None, error: str | None) -> DeliveryResult:
        return DeliveryResult(ok, status, error, time.monotonic() - start, code)

    all_headers = {"Content-Type": "application/json", **headers}
    try:
        async with asyncio.timeout(timeout):
            target = await resolve_target(url, policy, https_only=https_only, max_length=max_length)
            async with open_pinned(
                target, "POST", headers=all_headers, content=body, timeout=timeout, ca_file=policy.ca_file
            ) as response:
                status = response.status_code  # the body is never read: nothing we need is in it
    except UnsafeURLError as exc:
        return result(False, None, exc.code, exc.message)
    except (TimeoutError, httpx.TimeoutException):
        return result(False, None, "timeout", f"no response within {timeout:g} s")
    except Exception as exc:  # refused, reset, TLS failure, protocol error, ...
        return result(False, None, "connection_failed", str(exc) or exc.__class__.__name__)
    if 200 <= status < 300:
        return result(True, status, None, None)
    if 300 <= status < 400:
        return result(False, status, "redirect_not_followed", f"HTTP {status}: redirects are not followed")
    return result(False, status, "http_error", f"HTTP {status}")
