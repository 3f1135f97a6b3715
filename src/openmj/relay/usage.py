"""`openmj usage`: per provider, what relayed tasks cost the operator upstream and earned here.

The upstream cost is the provider's `cost` from the providers file, recorded with each task when
it completed (relay/engine.py), and the upstream's own credit figure where its API reports one
(EvoLink's `usage`). Failed tasks are refunded here and counted apart: an upstream may still have
charged for them, which only its own bill shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from openmj.store.usage import RelayedRow

NO_PROVIDER = "-"  # failed before any provider accepted it (or every one failed)


@dataclass
class ProviderUsage:
    provider: str
    completed: int = 0
    failed: int = 0
    charged: float = 0.0  # credits the customers paid openmj for these tasks
    cost: dict[str, float] = field(default_factory=dict)  # by unit (the providers file's cost_unit)
    upstream_credits: float = 0.0  # as the upstream reported them
    by_operation: dict[str, int] = field(default_factory=dict)


def summarise(rows: Iterable[RelayedRow]) -> list[ProviderUsage]:
    out: dict[str, ProviderUsage] = {}
    for row in rows:
        if row.status not in ("completed", "failed"):
            continue  # still running: not yet charged or refunded
        note = (row.output or {}).get("upstream") or {}
        name = str(note.get("provider") or NO_PROVIDER)
        usage = out.setdefault(name, ProviderUsage(name))
        if row.status == "failed":
            usage.failed += 1
            continue
        usage.completed += 1
        usage.charged += row.credits_charged
        usage.by_operation[row.operation] = usage.by_operation.get(row.operation, 0) + 1
        if isinstance(note.get("cost"), int | float):
            unit = str(note.get("cost_unit") or "")
            usage.cost[unit] = usage.cost.get(unit, 0.0) + float(note["cost"])
        if isinstance(note.get("credits"), int | float):
            usage.upstream_credits += float(note["credits"])
    return sorted(out.values(), key=lambda u: (u.provider == NO_PROVIDER, u.provider))


__all__ = ["NO_PROVIDER", "ProviderUsage", "summarise"]
