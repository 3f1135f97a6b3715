"""Typed results: a task, its images, a balance, a page of tasks (read from EvoLink's JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a status this client does not know (a newer server): treated as unfinished

    @classmethod
    def _missing_(cls, value: object) -> TaskStatus:
        return cls.UNKNOWN

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(frozen=True)
class ResultImage:
    """One output: its signed link (PNG, or MP4 for video) and, where the server says, size and seed."""

    url: str
    width: int | None = None
    height: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class TaskFailure:
    code: str
    message: str
    type: str | None = None


@dataclass(frozen=True)
class Task:
    """A task as `GET /v1/tasks/{id}` shows it. `raw` is the whole JSON object."""

    id: str
    status: TaskStatus
    progress: int
    model: str
    type: str  # image or video
    created: int
    images: list[ResultImage] = field(default_factory=list)
    grid_url: str | None = None
    error: TaskFailure | None = None
    estimated_time: float | None = None
    credits_reserved: float | None = None
    credits_used: float | None = None
    final_prompt: str | None = None
    duration: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def completed(self) -> bool:
        return self.status is TaskStatus.COMPLETED

    @property
    def urls(self) -> list[str]:
        return [im.url for im in self.images]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        usage = _dict(data.get("usage"))
        info = _dict(data.get("task_info"))
        images = [
            ResultImage(
                url=str(d.get("image_url") or d.get("video_url") or ""),
                width=_int(d.get("width")),
                height=_int(d.get("height")),
                seed=_int(d.get("seed")),
            )
            for d in data.get("result_data") or []
            if isinstance(d, dict)
        ]
        if not images:  # EvoLink itself may send `results` only
            images = [ResultImage(url=str(u)) for u in data.get("results") or [] if u]
        err = data.get("error")
        failure = (
            TaskFailure(str(err.get("code", "")), str(err.get("message", "")), err.get("type"))
            if isinstance(err, dict)
            else None
        )
        return cls(
            id=str(data.get("id", "")),
            status=TaskStatus(str(data.get("status", ""))),
            progress=_int(data.get("progress")) or 0,
            model=str(data.get("model", "")),
            type=str(data.get("type", "image")),
            created=_int(data.get("created")) or 0,
            images=images,
            grid_url=data.get("grid_url") or None,
            error=failure,
            estimated_time=_float(info.get("estimated_time")),
            credits_reserved=_float(usage.get("credits_reserved")),
            credits_used=_float(usage.get("credits_used")),
            final_prompt=data.get("final_prompt"),
            duration=_float(data.get("duration")),
            raw=data,
        )


@dataclass(frozen=True)
class Balance:
    remaining: float
    used: float
    unlimited: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Balance:
        wallet = _dict(_dict(data.get("data")).get("token")) or _dict(_dict(data.get("data")).get("user"))
        return cls(
            remaining=_float(wallet.get("remaining_credits")) or 0.0,
            used=_float(wallet.get("used_credits")) or 0.0,
            unlimited=bool(wallet.get("unlimited_credits", False)),
        )


@dataclass(frozen=True)
class TaskPage:
    """One page of `GET /v1/tasks` (newest first; items carry no result links)."""

    tasks: list[Task]
    page: int
    page_size: int
    total: int
    has_more: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPage:
        items = [Task.from_json(t) for t in data.get("data") or [] if isinstance(t, dict)]
        return cls(
            tasks=items,
            page=_int(data.get("page")) or 1,
            page_size=_int(data.get("page_size")) or len(items),
            total=_int(data.get("total")) or len(items),
            has_more=bool(data.get("has_more", False)),
        )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
