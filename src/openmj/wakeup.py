"""The in-process wake-up idle workers sleep on; the service sets it when it queues a task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Wakeup:
    """Set by every submission; PostgreSQL deployments add LISTEN/NOTIFY on top (app._listen)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.event.set()
