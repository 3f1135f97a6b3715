"""Credits per task, by (operation, speed, model), times the key group's multiplier.

Defaults follow EvoLink's V7 price list (draft $0.040, fast $0.079, turbo $0.159 per request),
read as 1 credit ≈ $0.01 and rounded: draft 4, fast 8, turbo 16. Relax costs as draft (it only
waits longer). Actions that run one image (upscale, enhance, remove background) cost half of a
grid, as the relays price mj_upscale at half of mj_imagine.

Video is priced per clip and per resolution, whatever the speed: Midjourney counts a job of four
SD clips as about eight image jobs (2 fast grids a clip: 16) and HD at about 3.2× SD (52). An
extend is one clip of its video's resolution; the virtual upscale resamples, half an SD clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openmj.core.tasks import Operation, Speed

GRID_PRICE = {Speed.DRAFT: 4.0, Speed.RELAX: 4.0, Speed.FAST: 8.0, Speed.TURBO: 16.0}
# EvoLink V8.1's top-level quality "hd" (native HD) costs 1.5× the speed's price; the two multiply
HD_PRICE_FACTOR = 1.5
# ... and so do Describe and Shorten: no grid is drawn (new-api prices mj_describe at half of mj_imagine)
SINGLE_IMAGE_OPERATIONS = frozenset(
    {Operation.UPSCALE, Operation.ENHANCE, Operation.REMOVE_BG, Operation.DESCRIBE, Operation.SHORTEN}
)

DEFAULT_PRICES: dict[str, float] = {
    f"{op.value}:{speed.value}": (price / 2 if op in SINGLE_IMAGE_OPERATIONS else price)
    for op in Operation
    for speed, price in GRID_PRICE.items()
}
DEFAULT_PRICES |= {
    "video:sd": 16.0,
    "video:hd": 52.0,
    "video_extend:sd": 16.0,
    "video_extend:hd": 52.0,
    "video_upscale": 8.0,
}


@dataclass
class PriceTable:
    """Lookup order: "op:speed:model", "op:speed", "op". Overrides come from configuration."""

    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    group_multipliers: dict[str, float] = field(default_factory=dict)

    @classmethod
    def with_overrides(
        cls, overrides: Mapping[str, float] | None, groups: Mapping[str, float] | None
    ) -> PriceTable:
        table = cls()
        table.prices.update(overrides or {})
        table.group_multipliers.update(groups or {})
        return table

    def base_price(self, operation: Operation, speed: Speed, model: str) -> float:
        return self._lookup(operation, speed.value, model, GRID_PRICE[speed])

    def _lookup(self, operation: Operation, qualifier: str, model: str, default: float) -> float:
        """The most specific of "op:qualifier:model", "op:qualifier", "op"."""
        for key in (
            f"{operation.value}:{qualifier}:{model}",
            f"{operation.value}:{qualifier}",
            operation.value,
        ):
            if key in self.prices:
                return float(self.prices[key])
        return default

    def clip_price(self, operation: Operation, resolution: str, model: str) -> float:
        """One clip: "op:resolution:model", "op:resolution", "op"."""
        return self._lookup(operation, resolution, model, DEFAULT_PRICES[f"video:{resolution}"])

    def video_price(self, operation: Operation, resolution: str, clips: int, model: str, group: str) -> float:
        each = self.clip_price(operation, resolution, model)
        return round(each * clips * self.group_multipliers.get(group, 1.0), 6)

    def price(
        self, operation: Operation, speed: Speed, model: str, group: str, quality: str | None = None
    ) -> float:
        factor = self.group_multipliers.get(group, 1.0) * (HD_PRICE_FACTOR if quality == "hd" else 1.0)
        return round(self.base_price(operation, speed, model) * factor, 6)
