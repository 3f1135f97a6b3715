"""What every dialect shares: its registry record, the context, keys, bodies, links, and the small
wire helpers that would otherwise be written once per dialect."""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from openmj import jsonwire
from openmj.callbacks import MAX_URL_LENGTH
from openmj.core import idempotency
from openmj.core.accounts import ApiKey
from openmj.core.dialects import DialectPolicy, media_lifetime, policy
from openmj.core.prompt import PromptError
from openmj.core.prompt.policies import video_prompt
from openmj.core.spec import TranslationSpec
from openmj.core.tasks import ErrorCode, ImageResult, Task, TaskError, TaskRequest
from openmj.media.signing import UrlSigner
from openmj.net import NetPolicy, UnsafeURLError, check_url
from openmj.service import TaskService

log = logging.getLogger("openmj.api")
M = TypeVar("M", bound=BaseModel)


class FinishedRenders:
    """Answers for finished tasks, kept encoded with their owner. A finished task never changes
    again (its links expire at a time fixed when it finished), so a relay that polls the same
    1,000 ids every few seconds gets each rendered once, without even a database read. Entries
    live `ttl` seconds, so a task deleted by the retention job drops out of every node's cache."""

    def __init__(self, size: int = 20_000, ttl: float = 300.0) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[tuple[str, str], tuple[str, bytes, float]] = OrderedDict()

    def get(self, kind: str, task_id: str, owner: str) -> bytes | None:
        hit = self._items.get((kind, task_id))
        if hit is None or hit[0] != owner or time.monotonic() - hit[2] > self.ttl:
            return None
        self._items.move_to_end((kind, task_id))
        return hit[1]

    def put(self, kind: str, task_id: str, owner: str, body: bytes) -> None:
        self._items[(kind, task_id)] = (owner, body, time.monotonic())
        self._items.move_to_end((kind, task_id))
        if len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass
class Context:
    """What the dialect routers need, stored on app.state.ctx by the app's lifespan."""

    service: TaskService
    signer: UrlSigner
    net: NetPolicy
    renders: FinishedRenders = field(default_factory=FinishedRenders)


ErrorRenderer = Callable[[TaskError], Response]
CallbackPayload = Callable[[Context, Task, str], Any]


@dataclass(frozen=True)
class Dialect:
    """One API openmj speaks, as the app and the callback deliverer see it (dialects/__init__.py
    lists them). Its rules once a task exists are `policy`, a core table."""

    name: str
    title: str  # the OpenAPI tag of its routes
    router: APIRouter
    path_pattern: str  # a regular expression for the URL paths whose errors it renders
    error_response: ErrorRenderer
    callback_payload: CallbackPayload

    def owns(self, path: str) -> bool:
        return re.match(self.path_pattern, path) is not None

    @property
    def policy(self) -> DialectPolicy:
        return policy(self.name)


def ctx(request: Request) -> Context:
    context: Context = request.app.state.ctx
    return context


# --------------------------------------------------------------------------- keys


def strip_bearer(header: str) -> str:
    """`Bearer sk-…` → `sk-…`; a raw token is returned as it is (midjourney-proxy sends those)."""
    header = header.strip()
    return header[7:].strip() if header[:7].lower() == "bearer " else header


def bearer(request: Request) -> str | None:
    return strip_bearer(request.headers.get("authorization", "")) or None


async def authenticate(request: Request, secret: str | None = None) -> ApiKey:
    key = await ctx(request).service.authenticate(secret if secret is not None else bearer(request))
    request.state.key_id = key.id
    return key


# --------------------------------------------------------------------------- bodies


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise TaskError(ErrorCode.INVALID_REQUEST, "The request body is empty; send a JSON object", 400)
    try:
        return jsonwire.loads(raw)
    except jsonwire.JsonRefused as exc:
        raise TaskError(ErrorCode.INVALID_REQUEST, exc.message, 400) from exc


def parse_model(cls: type[M], data: Any) -> M:
    """Validate a body with pydantic; the first problem becomes a 400 naming the field."""
    if not isinstance(data, dict):
        raise TaskError(ErrorCode.INVALID_REQUEST, "The request body must be a JSON object", 400)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        raise TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Invalid parameter '{loc}': {msg}", 400, param=loc
        ) from exc


async def read_body(request: Request, cls: type[M]) -> tuple[M, dict[str, Any]]:
    """The body as `cls` (documented in the OpenAPI by `openapi.documented(cls)`), and as sent."""
    data = await read_json(request)
    return parse_model(cls, data), data


# --------------------------------------------------------------------------- small shared rules


def invalid(message: str, param: str | None = None) -> TaskError:
    return TaskError(ErrorCode.INVALID_PARAMETERS, message, 400, param=param)


def prompt_error(exc: PromptError, param: str = "prompt") -> TaskError:
    """A prompt Midjourney would refuse, with Midjourney's message."""
    return TaskError(ErrorCode.INVALID_PROMPT, exc.message, 400, param=param)


def retry_after(err: TaskError) -> dict[str, str] | None:
    """The Retry-After header of a refusal that says when to come back (whole seconds, rounded up)."""
    return {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after else None


def callback_url(request: Request, url: str | None, field: str, *, blank_is_none: bool = True) -> str | None:
    """A client's callback URL, refused now if the deliverer would refuse it (https only, a public
    address, at most the deliverer's length), so it is never accepted and silently never called."""
    if url is None or (blank_is_none and not url.strip()):
        return None
    try:
        check_url(url.strip(), ctx(request).net, https_only=True, max_length=MAX_URL_LENGTH)
    except UnsafeURLError as exc:
        raise invalid(f"Invalid {field}: {exc.message}", field) from exc
    return url.strip()


def idempotency_key(request: Request) -> str | None:
    """The create's `Idempotency-Key` header (core/idempotency.py), checked."""
    return idempotency.checked_key(request.headers.get(idempotency.HEADER))


def version_text(value: str | int | float | None) -> str | None:
    """A version field as text: clients send 7 or 6.1 as JSON numbers as well as strings."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None if value is None else str(value)


def unix_ms(ts: float | None) -> int | None:
    return None if ts is None else int(round(ts * 1000))


# --------------------------------------------------------------------------- rendering


def media_url(signer: UrlSigner, task: Task, image: ImageResult) -> str:
    """A signed link that expires with the task's media (set at completion by its dialect's rule)."""
    lifetime = media_lifetime(task.dialect, task.spec.get("version"))
    exp = task.media_expires_at or ((task.finished_at or task.created_at) + lifetime)
    return signer.sign(f"/media/{task.id}/{image.name}", exp, task.owner)


def result_urls(signer: UrlSigner, task: Task) -> list[str]:
    return [media_url(signer, task, im) for im in task.results]


def render_each(
    tasks: Iterable[Task], render: Callable[[Task], Any], placeholder: Callable[[Task], Any]
) -> list[Any]:
    """Render a list; a task that cannot be rendered (a corrupt row) becomes its dialect's
    placeholder instead of turning the whole list — a relay's bulk poll — into a 500."""
    out = []
    for task in tasks:
        try:
            out.append(render(task))
        except Exception:  # logged with the task id; the rest of the list still answers
            log.exception("task %s cannot be rendered; answering a placeholder", task.id)
            out.append(placeholder(task))
    return out


UNRENDERABLE = "This task's stored data cannot be shown; please contact the operator"


async def render_ids(
    request: Request,
    key: ApiKey,
    ids: Sequence[str],
    kind: str,
    render: Callable[[Task], Any],
    placeholder: Callable[[Task], Any],
) -> bytes:
    """The JSON array of the key's tasks among `ids` (others and unknown ids left out), rendered
    with `render`; finished tasks come from the render cache under `kind` once rendered."""
    context = ctx(request)
    wanted = list(dict.fromkeys(ids))
    parts: dict[str, bytes] = {}
    for task_id in wanted:
        hit = context.renders.get(kind, task_id, key.id)
        if hit is not None:
            parts[task_id] = hit
    missing = [task_id for task_id in wanted if task_id not in parts]
    for task in await context.service.get_many(key, missing) if missing else []:
        body = jsonwire.dumps(render_each([task], render, placeholder)[0])
        parts[task.id] = body
        if task.status.terminal:
            context.renders.put(kind, task.id, key.id, body)
    return b"[" + b",".join(parts[t] for t in wanted if t in parts) + b"]"


def video_prompt_fields(text: str) -> dict[str, Any] | None:
    """A video's motion prompt in the normal form (None when empty), or the dialect's 4xx."""
    try:
        parsed = video_prompt(text)
    except PromptError as exc:
        raise prompt_error(exc) from exc
    return None if parsed is None else parsed.to_dict()


async def translate_prompt_field(
    request: Request, body: Any, requested: bool | None
) -> TranslationSpec | None:
    """Translate `body.prompt` in place (the English text is what the dialect then parses) and
    return the note to keep with the request (`keep_original`); None when nothing was translated.
    `requested`: the request's own translation flag, None when its API has none."""
    text = getattr(body, "prompt", None)
    if not isinstance(text, str) or not text.strip():
        return None
    done = await ctx(request).service.english(text, requested)
    if done.record is not None:
        body.prompt = done.text
    return done.record


def keep_original(req: TaskRequest, record: TranslationSpec | None) -> TaskRequest:
    """The task shows the prompt as the client wrote it and keeps the translation beside it."""
    if record is not None:
        req.prompt = record.get("original", req.prompt)
        req.translation = record
    return req
