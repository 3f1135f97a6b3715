"""One HTTP request to an address that was checked before, never to a fresh DNS answer.

The request goes to ``scheme://<checked IP>:port/path`` with ``Host: <name>`` and, for https,
TLS SNI and certificate verification against the name (httpx's ``sni_hostname`` extension).
Each request gets its own connection pool, so a connection made for one name is never reused
for another, and no proxy from the environment can bypass the address check.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

import certifi
import httpx

from openmj import __version__ as _version
from openmj.net.guard import Target

USER_AGENT = f"openmj/{_version}"


@lru_cache(maxsize=8)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    # Built once: loading the CA bundle costs more than a handshake.
    return ssl.create_default_context(cafile=ca_file or certifi.where())


@asynccontextmanager
async def open_pinned(
    target: Target,
    method: str,
    *,
    headers: dict[str, str],
    timeout: float,
    content: bytes | None = None,
    ca_file: str | None = None,
) -> AsyncIterator[httpx.Response]:
    """Send one request to ``target.addresses`` (in order, next one on connect failure) and
    yield the streamed response. Redirects are never followed here."""
    if not target.addresses:
        raise ValueError("target has not been resolved")
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if target.ip is None:
        extensions["sni_hostname"] = target.host
    all_headers = {"User-Agent": USER_AGENT, **headers, "Host": target.host_header}
    # The transport, not a Client: a Client would parse Location itself (and fail on odd ones),
    # keep cookies and read proxy settings from the environment. We want none of that.
    async with httpx.AsyncHTTPTransport(verify=_ssl_context(ca_file), retries=0) as transport:
        response: httpx.Response | None = None
        error: Exception | None = None
        for ip in target.addresses:
            request = httpx.Request(
                method,
                target.url.copy_with(host=str(ip)),
                headers=all_headers,
                content=content,
                extensions=extensions,
            )
            try:
                response = await transport.handle_async_request(request)
                break
            except httpx.ConnectError as exc:  # refused/unreachable/TLS failure: try the next
                error = exc
        if response is None:
            assert error is not None
            raise error
        try:
            yield response
        finally:
            await response.aclose()
