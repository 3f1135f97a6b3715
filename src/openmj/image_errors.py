"""How an image that could not be used becomes the client's error, at submit or in the worker.

The dialects map these codes (EvoLink image_processing_error; APIXO INVALID_IMAGE_URL /
IMAGE_TOO_LARGE / UNSUPPORTED_FORMAT; kie 422; midjourney-proxy validation error).
"""

from __future__ import annotations

from openmj.core.tasks import ErrorCode, TaskError
from openmj.net import FETCH_ERROR_KINDS, ImageFetchError

_KIND_CODES = {
    "too_large": ErrorCode.IMAGE_TOO_LARGE,
    "unsupported_format": ErrorCode.UNSUPPORTED_FORMAT,
    "bad_url": ErrorCode.INVALID_IMAGE_URL,
}


def fetch_error(url: str, exc: ImageFetchError) -> TaskError:
    kind = FETCH_ERROR_KINDS.get(exc.code, "bad_url")
    short = url if len(url) <= 120 else url[:117] + "..."
    if short.startswith("data:"):
        short = short[:40] + "..."
    what = {"too_large": "is too large", "unsupported_format": "has an unsupported format"}.get(
        kind, "could not be downloaded"
    )
    if exc.code == "bad_dimensions":
        what = "cannot be used"
    return TaskError(
        _KIND_CODES.get(kind, ErrorCode.IMAGE_PROCESSING), f"Image {short} {what}: {exc.message}", 400
    )
