"""What the client raises: the API's refusals carry its HTTP status, `error.code` and message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openmj.client.tasks import Task


class OpenMJError(Exception):
    """Every error this client raises."""


class APIError(OpenMJError):
    """The API answered with an error: `status` (HTTP), `code` and `message` as the API gave them."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        type: str | None = None,  # noqa: A002 - EvoLink's field name
        param: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.type = type
        self.param = param
        self.retry_after = retry_after
        self.body = body


class BadRequestError(APIError):
    """400, 413, 422: the request itself is wrong (a bad prompt, parameter or task state)."""


class AuthenticationError(APIError):
    """401: no key, or one the server does not know."""


class InsufficientCreditsError(APIError):
    """402: the key's balance is below the task's price."""


class PermissionDeniedError(APIError):
    """403: a disabled or expired key, a model it may not use, an upscale of an upscale."""


class NotFoundError(APIError):
    """404: an unknown task (or another key's), or a path this server does not have."""


class RateLimitError(APIError):
    """429 after the retry budget was spent: too many requests or unfinished tasks."""


class ServerError(APIError):
    """5xx after the retry budget was spent."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class(status: int) -> type[APIError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


class APIConnectionError(OpenMJError):
    """The server could not be reached (or stopped answering) within the retry budget."""


class TaskFailedError(OpenMJError):
    """A waited-for task ended failed or cancelled: its `error.code` and message, and the task."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.code = task.error.code if task.error else task.status.value
        self.message = task.error.message if task.error else ""
        super().__init__(f"task {task.id} {task.status.value}: {self.code}: {self.message}")


class WaitTimeoutError(OpenMJError):
    """`wait` gave up before the task finished; `task` is how it last looked."""

    def __init__(self, task: Task, timeout: float) -> None:
        self.task = task
        super().__init__(
            f"task {task.id} still {task.status.value} ({task.progress} %) after {timeout:g} s of waiting"
        )
