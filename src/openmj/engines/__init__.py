"""Engines make the pictures. `build_engine` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openmj.config import Settings
    from openmj.engines.base import Engine


def build_engine(settings: Settings) -> Engine:
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import resolve_preset, resolve_video_preset

    preset = resolve_preset(settings.model)
    video = resolve_video_preset(preset, settings.video_model)
    return LocalEngine(preset, settings.data_dir / "models", settings.device, video=video)
