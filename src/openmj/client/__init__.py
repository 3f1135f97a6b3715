"""The openmj Python client: `Client` and `AsyncClient` over the EvoLink API (docs/client.md).

    from openmj.client import Client
    with Client("sk-…", "http://127.0.0.1:8000") as mj:
        task = mj.wait(mj.imagine("a red fox --ar 3:2"), on_progress=lambda t: print(t.progress))
        mj.download(task, "out/")

It needs httpx only (no server code), and works against EvoLink itself by base URL
(`video` and `cancel` are openmj's own).
"""

from openmj.client.aio import AsyncClient
from openmj.client.bodies import polygon_mask
from openmj.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    OpenMJError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from openmj.client.sync import Client
from openmj.client.tasks import Balance, ResultImage, Task, TaskFailure, TaskPage, TaskStatus
from openmj.client.transport import NO_RETRY, RetryEvent, RetryPolicy

__all__ = [
    "NO_RETRY",
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "Client",
    "InsufficientCreditsError",
    "NotFoundError",
    "OpenMJError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultImage",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "Task",
    "TaskFailedError",
    "TaskFailure",
    "TaskPage",
    "TaskStatus",
    "WaitTimeoutError",
    "polygon_mask",
]
