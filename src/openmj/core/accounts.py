"""An API key as the rest of openmj sees it (stored as a hash; see openmj.accounts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiKey:
    id: str
    prefix: str
    name: str
    group: str
    credits: float
    models: list[str] | None
    rpm: int | None
    concurrency: int | None
    expires_at: float | None
    disabled: bool
    created_at: float


@dataclass(frozen=True)
class Balance:
    """A key's credits: what is left, and what was spent (reservations not refunded)."""

    remaining: float
    used: float
