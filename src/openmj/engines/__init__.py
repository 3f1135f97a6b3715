"""Engines make the pictures. `build_engine` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openmj.config import Settings
    from openmj.engines.base import Engine


def build_engine(settings: Settings) -> Engine:
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import resolve_preset

    return LocalEngine(resolve_preset(settings.model), settings.data_dir / "models", settings.device)
