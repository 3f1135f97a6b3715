"""The client side of the `openmj` command: imagine, upscale, vary, zoom, pan, status, balance.

stdout carries what a script reads (a task id, links, file paths, or `--json`); progress and
messages go to stderr. Exit codes (docs/client.md): 0 done, 1 the task failed or was cancelled,
2 usage, 3 refused (400/403/404/413), 4 key refused (401), 5 not enough credits (402),
6 rate limited (429), 7 server error or unreachable, 8 not finished (wait timed out, `status`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from openmj.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    OpenMJError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from openmj.client.sync import Client
from openmj.client.tasks import Task
from openmj.client.transport import RetryEvent

OK, TASK_FAILED, USAGE, REFUSED, KEY_REFUSED, NO_CREDITS, RATE_LIMITED, UNAVAILABLE, NOT_FINISHED = range(9)

BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", envvar="OPENMJ_BASE_URL", help="openmj's URL (default 127.0.0.1:8000)"),
]
Key = Annotated[str | None, typer.Option("--key", envvar="OPENMJ_API_KEY", show_envvar=True, help="API key")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the task (or balance) as JSON on stdout")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the result, with a progress bar on stderr")]
Out = Annotated[
    Path | None, typer.Option("--out", help="Download the results into this folder (implies --wait)")
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait at most", min=0)]
Interval = Annotated[float, typer.Option("--interval", help="Seconds between polls", min=0.05)]
TaskArg = Annotated[str, typer.Argument(help="The task id (task-unified-…)", show_default=False)]
Number = Annotated[int, typer.Argument(help="The image, 1–4 as on the U1–U4 / V1–V4 buttons", min=1, max=4)]
SpeedOption = Annotated[
    str | None, typer.Option("--speed", help="draft, fast or turbo (the queue and price)")
]
PromptOption = Annotated[str | None, typer.Option("--prompt", help="A new prompt (remix)")]


def _say(text: str) -> None:
    typer.echo(text, err=True)


@contextmanager
def _exit_codes(as_json: bool) -> Iterator[None]:
    """Each failure as a message on stderr (and `{"error": …}` on stdout with --json) and its exit code."""
    try:
        yield
    except TaskFailedError as exc:
        _fail(as_json, TASK_FAILED, str(exc), {"code": exc.code, "message": exc.message}, exc.task)
    except WaitTimeoutError as exc:
        _fail(as_json, NOT_FINISHED, str(exc), {"code": "wait_timeout", "message": str(exc)}, exc.task)
    except APIError as exc:
        code = {
            AuthenticationError: KEY_REFUSED,
            InsufficientCreditsError: NO_CREDITS,
            RateLimitError: RATE_LIMITED,
            ServerError: UNAVAILABLE,
        }.get(type(exc), REFUSED)
        detail = {"status": exc.status, "code": exc.code, "message": exc.message}
        _fail(as_json, code, f"error: {exc.message} (HTTP {exc.status} {exc.code})", detail)
    except APIConnectionError as exc:
        _fail(as_json, UNAVAILABLE, f"error: {exc}", {"code": "unreachable", "message": str(exc)})
    except OpenMJError as exc:  # no key, a bad base URL, a task without results
        _fail(as_json, USAGE, f"error: {exc}", {"code": "usage", "message": str(exc)})


def _fail(as_json: bool, code: int, text: str, error: dict[str, Any], task: Task | None = None) -> None:
    _say(text)
    if as_json:
        typer.echo(json.dumps({"error": error} | ({"task": task.raw} if task else {}), ensure_ascii=False))
    raise typer.Exit(code)


def _client(key: str | None, base_url: str | None) -> Client:
    return Client(key, base_url, on_retry=_retrying)


def _retrying(event: RetryEvent) -> None:
    """Said on stderr, so a wrong address or a busy server is not a silent wait."""
    what = f"HTTP {event.status}" if event.status else "no connection"
    _say(f"{what} ({event.reason[:120]}): trying again in {event.delay:g} s")


def _wait(client: Client, task: Task, timeout: float, interval: float, show: bool) -> Task:
    if not show:
        return client.wait(task, timeout=timeout, interval=interval)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        row = bar.add_task(f"{task.id} {task.status.value}", total=100)

        def report(t: Task) -> None:
            bar.update(
                row, completed=100 if t.completed else t.progress, description=f"{t.id} {t.status.value}"
            )

        return client.wait(task, on_progress=report, timeout=timeout, interval=interval)


def _finish(
    client: Client,
    submit: Callable[[Client], Task],
    *,
    wait: bool,
    out: Path | None,
    as_json: bool,
    timeout: float,
    interval: float,
) -> None:
    """Submit, then (with --wait or --out) wait, download, and print what a script reads."""
    task = submit(client)
    _say(f"{task.id} {task.status.value}")
    files: list[Path] = []
    if wait or out is not None:
        task = _wait(client, task, timeout, interval, show=not as_json)
        if out is not None:
            files = client.download(task, out)
    if as_json:
        typer.echo(
            json.dumps(task.raw | ({"files": [str(f) for f in files]} if files else {}), ensure_ascii=False)
        )
    elif files:
        typer.echo("\n".join(str(f) for f in files))
    elif task.completed:
        typer.echo("\n".join(task.urls))
    else:
        typer.echo(task.id)


def _speed(value: str | None) -> Literal["draft", "fast", "turbo"] | None:
    if value not in (None, "draft", "fast", "turbo"):
        raise typer.BadParameter(f"{value!r} is not draft, fast or turbo", param_hint="--speed")
    return value  # type: ignore[return-value]


def imagine(
    prompt: Annotated[str, typer.Argument(help='A Midjourney prompt, e.g. "a red fox --ar 3:2"')],
    speed: SpeedOption = None,
    wait: Wait = False,
    out: Out = None,
    as_json: AsJson = False,
    timeout: Timeout = 1200.0,
    interval: Interval = 1.0,
    base_url: BaseUrl = None,
    key: Key = None,
) -> None:
    """Four images from a prompt; prints the task id, or with --wait the links, with --out the files."""
    chosen = _speed(speed)
    with _exit_codes(as_json), _client(key, base_url) as c:
        _finish(
            c, lambda c: c.imagine(prompt, speed=chosen),
            wait=wait, out=out, as_json=as_json, timeout=timeout, interval=interval,
        )  # fmt: skip


def upscale(
    task: TaskArg,
    n: Number,
    creative: Annotated[bool, typer.Option("--creative", help="Upscale (Creative); default Subtle")] = False,
    wait: Wait = False,
    out: Out = None,
    as_json: AsJson = False,
    timeout: Timeout = 1200.0,
    interval: Interval = 1.0,
    base_url: BaseUrl = None,
    key: Key = None,
) -> None:
    """Upscale image N (U1–U4) of a finished task: one image, twice each side."""
    with _exit_codes(as_json), _client(key, base_url) as c:
        _finish(
            c, lambda c: c.upscale(task, n - 1, creative=creative),
            wait=wait, out=out, as_json=as_json, timeout=timeout, interval=interval,
        )  # fmt: skip


def vary(
    task: TaskArg,
    n: Number,
    strong: Annotated[bool, typer.Option("--strong", help="Vary (Strong); default Subtle")] = False,
    prompt: PromptOption = None,
    speed: SpeedOption = None,
    wait: Wait = False,
    out: Out = None,
    as_json: AsJson = False,
    timeout: Timeout = 1200.0,
    interval: Interval = 1.0,
    base_url: BaseUrl = None,
    key: Key = None,
) -> None:
    """Four variations of image N (V1–V4) of a finished task."""
    chosen = _speed(speed)
    with _exit_codes(as_json), _client(key, base_url) as c:
        _finish(
            c, lambda c: c.vary(task, n - 1, strong=strong, prompt=prompt, speed=chosen),
            wait=wait, out=out, as_json=as_json, timeout=timeout, interval=interval,
        )  # fmt: skip


def zoom(
    task: TaskArg,
    n: Number,
    scale: Annotated[float, typer.Option("--scale", help="Zoom out by 1.1–2 (2 = Zoom Out 2x)")] = 1.5,
    prompt: PromptOption = None,
    wait: Wait = False,
    out: Out = None,
    as_json: AsJson = False,
    timeout: Timeout = 1200.0,
    interval: Interval = 1.0,
    base_url: BaseUrl = None,
    key: Key = None,
) -> None:
    """Zoom out of image N: the same size, the image shrunk in the middle, the border painted."""
    with _exit_codes(as_json), _client(key, base_url) as c:
        _finish(
            c, lambda c: c.zoom(task, n - 1, scale=scale, prompt=prompt),
            wait=wait, out=out, as_json=as_json, timeout=timeout, interval=interval,
        )  # fmt: skip


def pan(
    task: TaskArg,
    n: Number,
    direction: Annotated[str, typer.Option("--direction", help="left, right, up or down")],
    scale: Annotated[float, typer.Option("--scale", help="How far: the side grows by scale − 1")] = 1.5,
    prompt: PromptOption = None,
    wait: Wait = False,
    out: Out = None,
    as_json: AsJson = False,
    timeout: Timeout = 1200.0,
    interval: Interval = 1.0,
    base_url: BaseUrl = None,
    key: Key = None,
) -> None:
    """Pan image N: the canvas grows on one side, the new part painted."""
    if direction not in ("left", "right", "up", "down"):
        raise typer.BadParameter(f"{direction!r} is not left, right, up or down", param_hint="--direction")
    with _exit_codes(as_json), _client(key, base_url) as c:
        _finish(
            c, lambda c: c.pan(task, n - 1, direction, scale=scale, prompt=prompt),  # type: ignore[arg-type]
            wait=wait, out=out, as_json=as_json, timeout=timeout, interval=interval,
        )  # fmt: skip


def status(task: TaskArg, as_json: AsJson = False, base_url: BaseUrl = None, key: Key = None) -> None:
    """A task's status, progress and links; exit 0 completed, 1 failed or cancelled, 8 not finished."""
    with _exit_codes(as_json), _client(key, base_url) as c:
        found = c.get(task)
    if as_json:
        typer.echo(json.dumps(found.raw, ensure_ascii=False))
    else:
        typer.echo(f"{found.id}\t{found.status.value}\t{found.progress}%")
        if found.error:
            typer.echo(f"{found.error.code}: {found.error.message}")
        for url in found.urls:
            typer.echo(url)
    if not found.finished:
        raise typer.Exit(NOT_FINISHED)
    raise typer.Exit(OK if found.completed else TASK_FAILED)


def balance(as_json: AsJson = False, base_url: BaseUrl = None, key: Key = None) -> None:
    """The key's credits: remaining and used."""
    with _exit_codes(as_json), _client(key, base_url) as c:
        wallet = c.balance()
    if as_json:
        data = {
            "remaining_credits": wallet.remaining,
            "used_credits": wallet.used,
            "unlimited": wallet.unlimited,
        }
        typer.echo(json.dumps(data))
    else:
        typer.echo(f"{wallet.remaining:g} credits left ({wallet.used:g} used)")


COMMANDS: dict[str, Callable[..., None]] = {
    "imagine": imagine,
    "upscale": upscale,
    "vary": vary,
    "zoom": zoom,
    "pan": pan,
    "status": status,
    "balance": balance,
}


def register(app: typer.Typer) -> None:
    """Add the client commands to the `openmj` command."""
    for name, fn in COMMANDS.items():
        app.command(name, rich_help_panel="Client (talks to a running openmj)")(fn)
