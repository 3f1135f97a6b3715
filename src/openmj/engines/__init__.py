"""Engines make the pictures. `build_engine` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openmj.config import Settings
    from openmj.engines.base import Engine


def build_engine(settings: Settings) -> Engine:
    """With a providers file, the relay (docs/relay.md), over the local models when a provider is
    `local`; else the local models."""
    if settings.providers_file is not None:
        from openmj.net import NetPolicy
        from openmj.relay.engine import RelayEngine
        from openmj.relay.providers import load_providers

        providers = load_providers(settings.providers_file)
        local = build_local_engine(settings) if any(p.dialect == "local" for p in providers) else None
        from openmj.media.signing import UrlSigner
        from openmj.relay.hooks import HookUrls

        net = NetPolicy(allow_private=settings.allow_private_network)
        hooks = HookUrls(UrlSigner(settings.resolved_secret(), settings.resolved_public_url))
        return RelayEngine(providers, local, net=net, concurrency=settings.relay_concurrency, hooks=hooks)
    return build_local_engine(settings)


def build_local_engine(settings: Settings) -> Engine:
    """One LocalEngine per served model (`--model A --model B`); the first carries the video
    and captioning models. Several share one device lock (LocalEngines)."""
    import threading

    from openmj.engines.local.engine import LocalEngine, LocalEngines
    from openmj.engines.local.presets import resolve_caption_model, resolve_preset, resolve_video_preset

    lock = threading.Lock()
    engines = []
    for i, name in enumerate(settings.model_names):
        preset = resolve_preset(name)
        video = resolve_video_preset(preset, settings.video_model) if i == 0 else None
        captions = resolve_caption_model(preset, settings.caption_model) if i == 0 else None
        engines.append(
            LocalEngine(
                preset,
                settings.data_dir / "models",
                settings.device,
                video=video,
                cpu_offload=settings.cpu_offload,
                compile=settings.compile,
                lock=lock,
                caption_source=captions,
            )
        )
    return engines[0] if len(engines) == 1 else LocalEngines(engines)
