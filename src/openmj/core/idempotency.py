"""Idempotent creates: a client that retries a create after a dropped connection sends the same
`Idempotency-Key` header and gets the first task back, charged once (IETF draft
"The Idempotency-Key HTTP Header Field"; Stripe's and OpenAI's APIs behave the same).

A key is remembered per API key for `WINDOW_S`; reused with a different request it is refused
(409), since answering with a task made for other input would be wrong either way.
"""

from __future__ import annotations

import hashlib
import json

from openmj.core.tasks import ErrorCode, TaskError, TaskRequest

WINDOW_S = 24 * 3600.0
HEADER = "Idempotency-Key"
MAX_LENGTH = 255


def checked_key(value: str | None) -> str | None:
    """The header's value, or a 400 for one that is empty, too long or not printable ASCII."""
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_LENGTH or not all(32 <= ord(c) < 127 for c in key):
        raise TaskError(
            ErrorCode.INVALID_REQUEST,
            f"{HEADER} must be 1–{MAX_LENGTH} printable ASCII characters",
            400,
            param=HEADER,
        )
    return key


def fingerprint(req: TaskRequest) -> str:
    """What the create asked for: its API, operation, body and source (never the key)."""
    what = {
        "dialect": req.dialect,
        "operation": req.operation.value,
        "model": req.model,
        "prompt": req.prompt,
        "params": req.params,
        "parent": [req.parent_id, req.parent_index],
        "body": req.raw_request,
    }
    text = json.dumps(what, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def reused(key: str) -> TaskError:
    return TaskError(
        ErrorCode.INVALID_REQUEST,
        f"{HEADER} '{key}' was already used with a different request",
        409,
        param=HEADER,
    )


__all__ = ["HEADER", "WINDOW_S", "checked_key", "fingerprint", "reused"]
