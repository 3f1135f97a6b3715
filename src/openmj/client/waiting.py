"""What `wait` and `download` share between the sync and async clients: progress reports, the
deadline, the outcome, and the files results are written to."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from openmj.client.errors import OpenMJError, TaskFailedError, WaitTimeoutError
from openmj.client.tasks import Task

OnProgress = Callable[[Task], None]
TaskRef = str | Task


def task_id(task: TaskRef) -> str:
    return task.id if isinstance(task, Task) else task


class Watch:
    """One `wait`: calls `on_progress` when the status or progress changes, knows the deadline."""

    def __init__(self, on_progress: OnProgress | None, timeout: float | None) -> None:
        self.on_progress = on_progress
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._last: tuple[str, int] | None = None

    def seen(self, task: Task) -> None:
        state = (task.status.value, task.progress)
        if state != self._last:
            self._last = state
            if self.on_progress is not None:
                self.on_progress(task)

    def pause(self, task: Task, interval: float) -> float:
        """Seconds to sleep before the next poll; WaitTimeoutError once the deadline has passed."""
        if self.deadline is None:
            return interval
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeoutError(task, self.timeout or 0.0)
        return min(interval, left)


def outcome(task: Task, raise_on_failure: bool) -> Task:
    if raise_on_failure and not task.completed:
        raise TaskFailedError(task)
    return task


def downloads(task: Task, directory: str | Path, grid: bool) -> list[tuple[str, Path]]:
    """(link, file) for each result: `<task id>_<n>.<ext>`, n = 1–4 as on the U1–U4 buttons;
    the 2×2 grid as `<task id>_grid.png`."""
    if not task.completed:
        raise OpenMJError(f"task {task.id} is {task.status.value}: only a completed task has results")
    folder = Path(directory)
    out = [(im.url, folder / f"{task.id}_{n}{_suffix(im.url)}") for n, im in enumerate(task.images, 1)]
    if grid and task.grid_url:
        out.append((task.grid_url, folder / f"{task.id}_grid{_suffix(task.grid_url)}"))
    return out


def write_file(path: Path, data: bytes) -> None:
    """Written whole or not at all: a reader never sees half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _suffix(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    return suffix if suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4") else ".png"
