"""Where the client connects and with which key: arguments first, then the environment."""

from __future__ import annotations

import os

from openmj.client.errors import OpenMJError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "openmj-client/0.1"


def connection(api_key: str | None, base_url: str | None) -> tuple[str, dict[str, str]]:
    """(base URL without a trailing slash, the headers of every API call)."""
    key = api_key or os.environ.get("OPENMJ_API_KEY")
    if not key:
        raise OpenMJError("no API key: pass api_key=… or set OPENMJ_API_KEY")
    url = (base_url or os.environ.get("OPENMJ_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise OpenMJError(f"base URL must start with http:// or https://: {url!r}")
    return url, {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
