"""What the sync and async clients share about HTTP: which failures are retried and how long to
wait (Retry-After first, else exponential back-off, within a budget), and how an answer becomes
data or an `APIError`."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from openmj.client.bodies import Call
from openmj.client.errors import APIError, error_class

#: answers that say "not now" without having done anything: retried for every call
RETRY_ALWAYS = frozenset({429, 502, 503, 504})
#: a 500 may come after the server acted (a task created): retried only for reads
RETRY_READS = RETRY_ALWAYS | {500}


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries one call: at most `max_retries` more tries, waiting at most `budget`
    seconds in all. A Retry-After that does not fit in what is left of the budget is not waited for:
    the error is raised at once, carrying `retry_after`."""

    max_retries: int = 5
    budget: float = 120.0
    backoff: float = 0.5  # the first wait when the server names none; doubled each time
    max_backoff: float = 10.0

    def delay(self, attempt: int, retry_after: float | None, waited: float) -> float | None:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1), or None: give up."""
        if attempt > self.max_retries:
            return None
        wait = (
            retry_after
            if retry_after is not None
            else min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        )
        return wait if waited + wait <= self.budget else None


NO_RETRY = RetryPolicy(max_retries=0, budget=0.0)


@dataclass(frozen=True)
class RetryEvent:
    """Given to `on_retry` before each wait: the call, which try failed, why, and the wait."""

    call: Call
    attempt: int
    delay: float
    status: int | None  # the HTTP status, or None for a network failure
    reason: str


OnRetry = Callable[[RetryEvent], None]


def retryable_status(call: Call, status: int) -> bool:
    return status in (RETRY_READS if call.method == "GET" else RETRY_ALWAYS)


def retryable_exception(call: Call, exc: httpx.TransportError) -> bool:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True  # the request never reached the server
    return call.method == "GET"  # a read can be repeated whatever happened to the first


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def decode(response: httpx.Response) -> Any:
    """The answer's JSON, or the APIError it stands for."""
    if response.status_code >= 400:
        raise api_error(response)
    try:
        return response.json()
    except ValueError:
        raise APIError(
            response.status_code, "invalid_response", f"not JSON: {response.text[:200]!r}"
        ) from None


def api_error(response: httpx.Response) -> APIError:
    """EvoLink's envelope `{"error": {code, message, type, param}}`, the `{code, msg}` and
    `{code, description}` envelopes of the other APIs, or the bare text of a proxy in between."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code, message, kind, param = _http_code(status), response.text[:500] or response.reason_phrase, None, None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
            kind, param = err.get("type"), err.get("param")
        else:
            if body.get("code") is not None:
                code = str(body["code"])
            message = str(body.get("message") or body.get("msg") or body.get("description") or message)
    cls = error_class(status)
    return cls(status, code, message, type=kind, param=param, retry_after=retry_after(response), body=body)


def submitted_id(data: Any) -> str:
    """The task id of a midjourney-proxy SubmitResultVO (code 1), or its refusal as an APIError."""
    if isinstance(data, dict) and data.get("code") == 1 and isinstance(data.get("result"), str):
        return data["result"]
    code = str(data.get("code")) if isinstance(data, dict) else "invalid_response"
    message = str(data.get("description", "")) if isinstance(data, dict) else repr(data)[:200]
    raise error_class(400)(400, code, message, body=data)


def _http_code(status: int) -> str:
    return {429: "rate_limit_exceeded", 401: "unauthorized", 404: "not_found"}.get(status, f"http_{status}")
