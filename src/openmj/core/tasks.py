"""The task: what a client asked for, its state machine, and the errors the core raises.

Pure domain code: no HTTP, SQL or torch. Dialects translate wire JSON into a `TaskRequest`,
the service stores a `Task`, workers move it through `Status`.
"""

from __future__ import annotations

import enum
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from openmj.core.spec import Spec, TranslationSpec


class Operation(enum.StrEnum):
    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"  # subtle/strong; with a prompt it is a remix
    REMIX = "remix"
    ZOOM = "zoom"  # zoom out / outpaint, output keeps the source size
    PAN = "pan"
    MAKE_SQUARE = "make_square"
    INPAINT = "inpaint"  # vary region
    EDIT = "edit"  # editor canvas on a finished image
    UPLOAD_PAINT = "upload_paint"  # editor canvas on an uploaded image
    RETEXTURE = "retexture"
    REMOVE_BG = "remove_bg"
    ENHANCE = "enhance"  # draft -> full quality
    REROLL = "reroll"
    BLEND = "blend"
    VIDEO = "video"  # animate a start image into clips (core/video.py)
    VIDEO_EXTEND = "video_extend"  # one clip of a video task, continued by about 4 s
    VIDEO_UPSCALE = "video_upscale"  # one clip resampled to the HD size (Midjourney's "virtual" upscale)
    DESCRIBE = "describe"  # an image to four prompts (core/words.py)
    SHORTEN = "shorten"  # a prompt's words ranked, and five shorter prompts (core/words.py)


#: operations that take a finished task's image as their input
SOURCE_OPERATIONS = frozenset(
    {
        Operation.UPSCALE,
        Operation.VARIATION,
        Operation.REMIX,
        Operation.ZOOM,
        Operation.PAN,
        Operation.MAKE_SQUARE,
        Operation.INPAINT,
        Operation.EDIT,
        Operation.ENHANCE,
        Operation.REROLL,
    }
)


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # ---- modal (midjourney-proxy): an action waiting for the client's modal input (Custom Zoom,
    # Vary Region, remix). Not terminal, never claimed (workers claim only PENDING), not charged.
    MODAL = "modal"

    @property
    def terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


class Speed(enum.StrEnum):
    DRAFT = "draft"
    RELAX = "relax"
    FAST = "fast"
    TURBO = "turbo"

    @property
    def priority(self) -> int:
        """Queue priority: turbo > fast > relax > draft (docs/design.md)."""
        return {Speed.TURBO: 30, Speed.FAST: 20, Speed.RELAX: 10, Speed.DRAFT: 0}[self]


class ErrorCode(enum.StrEnum):
    """Core error codes; each dialect maps them onto its own codes and envelope."""

    INVALID_REQUEST = "invalid_request"
    INVALID_PARAMETERS = "invalid_parameters"
    INVALID_PROMPT = "invalid_prompt"
    UNAUTHORIZED = "unauthorized"
    KEY_DISABLED = "key_disabled"
    KEY_EXPIRED = "key_expired"
    MODEL_ACCESS_DENIED = "model_access_denied"
    INSUFFICIENT_QUOTA = "insufficient_quota"
    NOT_FOUND = "not_found"
    TASK_NOT_READY = "task_not_ready"
    ALREADY_UPSCALED = "already_upscaled"
    RATE_LIMITED = "rate_limit_exceeded"
    TOO_MANY_TASKS = "too_many_tasks"
    QUEUE_FULL = "queue_full"
    REQUEST_TOO_LARGE = "request_too_large"
    CONTENT_POLICY = "content_policy_violation"
    IMAGE_PROCESSING = "image_processing_error"
    IMAGE_TOO_LARGE = "image_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    INVALID_IMAGE_URL = "invalid_image_url"
    NOT_SUPPORTED = "not_supported"
    GENERATION_FAILED = "generation_failed"
    GENERATION_TIMEOUT = "generation_timeout"
    CANCELLED = "request_cancelled"
    SERVICE_ERROR = "service_error"


CANCELLED_MESSAGE = "The task was cancelled by the user"


class TaskError(Exception):
    """A rule was broken. `http_status` is the natural status; dialects may render it differently."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        http_status: int = 400,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.param = param
        self.retry_after = retry_after
        self.extra = extra or {}


def new_task_id(now: float | None = None) -> str:
    """`task-unified-<unix>-<8 alnum>`: EvoLink's form, accepted as an opaque id by every dialect."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"task-unified-{int(now if now is not None else time.time())}-{suffix}"


class ImageResult(NamedTuple):
    """One stored output image or clip; `name` is the file name under the task's media folder. (A
    named tuple: built for every image of every task a bulk poll reads, it must be cheap.) A clip
    (content type video/mp4) also has its frame count, frame rate and a thumbnail file."""

    name: str
    width: int
    height: int
    seed: int | None = None
    content_type: str = "image/png"
    frames: int = 0
    fps: float = 0.0
    thumbnail: str | None = None

    @property
    def is_video(self) -> bool:
        return self.frames > 0

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


@dataclass
class TaskRequest:
    """What a dialect hands to the service: already translated, not yet validated against accounts."""

    operation: Operation
    model: str  # the public model name the client asked for (e.g. "mj-v7")
    dialect: str
    prompt: str = ""
    parsed: dict[str, Any] | None = None  # the normal form (mj-prompt.md §11) after the prompt policy
    speed: Speed = Speed.FAST
    params: dict[str, Any] = field(
        default_factory=dict
    )  # operation options (type, scale, direction, mask...)
    parent_id: str | None = None
    parent_index: int | None = None
    callback_url: str | None = None
    raw_request: dict[str, Any] = field(default_factory=dict)  # the wire body, kept for dialect echoes
    prompt_version: str = "7"
    # how the client's API names and numbers `parent_index`, for error messages only
    index_field: str = "image_number"
    index_base: int = 0
    translation: TranslationSpec | None = None  # the prompt was translated (TaskService.english)


@dataclass
class Task:
    id: str
    owner: str  # api key id
    dialect: str
    operation: Operation
    model: str
    status: Status
    progress: int
    prompt: str
    spec: Spec  # parsed prompt + everything the engine needs; fixed at submit (core/spec.py)
    request: dict[str, Any]
    speed: Speed
    seed: int
    created_at: float
    parent_id: str | None = None
    parent_index: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    results: list[ImageResult] = field(default_factory=list)
    grid: ImageResult | None = None
    credits_reserved: float = 0.0
    credits_charged: float = 0.0
    user_group: str = "default"
    callback_url: str | None = None
    cancel_requested: bool = False
    attempts: int = 0
    media_expires_at: float | None = None
    deadline: float | None = None
    engine_model: str = ""  # the served model that runs it (core/routing.py); "" = any worker
    output: dict[str, Any] | None = None  # a text result (describe, shorten): core/words.py

    @property
    def final_prompt(self) -> str:
        """The prompt the model read: its English translation when it was translated."""
        return str(self.spec.get("translation", {}).get("prompt") or self.prompt)
