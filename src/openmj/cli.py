"""The `openmj` command: serve, worker, keys, prompt; and the client commands (openmj.client.commands)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from openmj.client.commands import register as register_client_commands
from openmj.config import Settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Self-hosted Midjourney-compatible image API."
)
keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, disable, grant credits.")
prompt_app = typer.Typer(no_args_is_help=True, help="The Midjourney prompt language.")
app.add_typer(keys_app, name="keys")
app.add_typer(prompt_app, name="prompt")
providers_app = typer.Typer(no_args_is_help=True, help="Upstream providers of the relay (docs/relay.md).")
app.add_typer(providers_app, name="providers")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (env OPENMJ_DATA_DIR)")]
ProvidersOption = Annotated[
    Path | None,
    typer.Option(
        "--providers", help="Relay tasks to the upstream providers in this TOML file (docs/relay.md)"
    ),
]


def _settings(**overrides: Any) -> Settings:
    base = Settings()
    values = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=values)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=os.environ.get("OPENMJ_LOG_LEVEL", level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # diffusers/transformers are chatty about things an operator cannot act on
    for noisy in ("httpx", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _repo_call(settings: Settings, fn: Any) -> Any:
    """Run `fn(repo)` against the data dir's database (migrated first), from a sync CLI command."""
    from openmj.store.db import Database, migrate_sync
    from openmj.store.repo import Repository

    migrate_sync(settings.resolved_database_url)

    async def main() -> Any:
        db = Database(settings.resolved_database_url)
        try:
            return await fn(Repository(db))
        finally:
            await db.dispose()

    return asyncio.run(main())


ModelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="Image model: a preset (`openmj models`), HF id or folder; repeat to serve several "
        "(the first is the main model; env OPENMJ_MODEL=a,b)",
    ),
]
VersionMapOption = Annotated[
    str | None,
    typer.Option(
        help='Midjourney version → model, e.g. "niji=z-image-turbo,6=sdxl-lightning" '
        "(default: all to the first model, niji to the second; env OPENMJ_VERSION_MAP as JSON)"
    ),
]
OffloadOption = Annotated[
    bool | None,
    typer.Option("--cpu-offload", help="Keep the model in RAM, move parts to a small GPU as they run"),
]
CompileOption = Annotated[bool | None, typer.Option("--compile", help="torch.compile the denoiser")]


def _model_settings(
    model: list[str] | None, version_map: str | None, cpu_offload: bool | None, compile: bool | None
) -> dict[str, Any]:
    """The model options as Settings fields (None = leave the environment's value)."""
    values: dict[str, Any] = {"cpu_offload": cpu_offload, "compile": compile}
    if model:
        values["model"] = ",".join(model)
    if version_map:
        pairs = [p.split("=", 1) for p in version_map.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise typer.BadParameter(f"not VERSION=MODEL pairs: {version_map!r}", param_hint="--version-map")
        values["version_map"] = {k.strip(): v.strip() for k, v in pairs}
    return values


CaptionOption = Annotated[
    str | None,
    typer.Option(
        help="Describe's captioner: auto, florence-2-base, florence-2-large, tiny-florence-2, a folder, none"
    ),
]


def _check_models(settings: Settings) -> None:
    """Refuse a version map that names a model this deployment does not serve, before starting."""
    from openmj.app import served_models

    try:
        served_models(settings)
        if settings.media_url:  # a malformed OPENMJ_MEDIA_URL stops the start too
            from openmj.media.s3 import parse_media_url

            parse_media_url(settings.media_url)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _load_translator(settings: Settings) -> Any:
    """The prompt translator, loaded now: a model that cannot load stops the start (exit 2)."""
    from openmj.app import build_translator
    from openmj.language.translator import TranslationLoadError

    try:
        translator = build_translator(settings)
        if translator is not None:
            typer.echo(
                f"loading translation model(s) {', '.join(sorted(set(translator.sources.values())))} …",
                err=True,
            )
            translator.load()
    except (ValueError, TranslationLoadError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return translator


def _load_engine(settings: Settings) -> Any:
    from openmj.engines import build_engine
    from openmj.engines.base import EngineLoadError

    _check_models(settings)
    engine = build_engine(settings)
    typer.echo(f"loading model(s) {', '.join(settings.model_names)} …", err=True)
    try:
        engine.load()
    except EngineLoadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return engine


def _first_key(settings: Settings) -> None:
    from openmj.accounts import create_key

    async def ensure(repo: Any) -> Any:
        if await repo.count_keys() > 0:
            return None
        return await create_key(repo, credits=settings.initial_key_credits, name="first key")

    new = _repo_call(settings, ensure)
    if new is not None:
        typer.echo(
            f"\nCreated a first API key with {settings.initial_key_credits:g} credits "
            f"(shown once; more with `openmj keys create`):\n\n    {new.secret}\n"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (env OPENMJ_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env OPENMJ_PORT)")] = None,
    data_dir: DataDir = None,
    model: ModelOption = None,
    version_map: VersionMapOption = None,
    cpu_offload: OffloadOption = None,
    compile: CompileOption = None,
    video_model: Annotated[
        str | None,
        typer.Option(help="Video preset (wan21-flf2v-720p, wan21-i2v-480p, tiny-video), folder or none"),
    ] = None,
    caption_model: CaptionOption = None,
    providers: ProvidersOption = None,
    translation_model: Annotated[
        str | None,
        typer.Option(help="Prompt translation: auto, opus-mt, tiny, none, or LANG=MODEL,… (docs/prompt.md)"),
    ] = None,
    translate_prompts: Annotated[
        str | None,
        typer.Option(help="What midjourney-proxy and EvoLink prompts get translated: off, cjk or all"),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="In-process workers")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only: run no worker here")] = False,
    public_url: Annotated[str | None, typer.Option(help="Base URL used in result links")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in the data dir)")
    ] = None,
) -> None:
    """Run the API (all four dialects) and, unless --no-worker, the workers, in one process."""
    from openmj import serving
    from openmj.app import create_app

    _logging()
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        video_model=video_model,
        caption_model=caption_model,
        providers_file=providers,
        translation_model=translation_model,
        translate_prompts=translate_prompts,
        workers=workers,
        public_url=public_url,
        database_url=database_url,
        **_model_settings(model, version_map, cpu_offload, compile),
    )
    if no_worker:
        settings = settings.model_copy(update={"run_worker": False})
    _check_models(settings)
    _first_key(settings)
    engine = _load_engine(settings) if settings.run_worker else None
    translator = _load_translator(settings)
    typer.echo(f"openmj listening on {settings.resolved_public_url}", err=True)
    typer.echo(f"the studio: open {settings.resolved_public_url}/ and paste a key", err=True)
    serving.serve(create_app(settings, engine, translator), settings)


@app.command()
def worker(
    data_dir: DataDir = None,
    model: ModelOption = None,
    cpu_offload: OffloadOption = None,
    compile: CompileOption = None,
    video_model: Annotated[str | None, typer.Option(help="Video preset, folder or none")] = None,
    caption_model: CaptionOption = None,
    providers: ProvidersOption = None,
    workers: Annotated[int | None, typer.Option(help="Workers in this process")] = None,
    database_url: Annotated[str | None, typer.Option(help="The shared database (PostgreSQL)")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this node's /metrics on this port (docs/metrics.md)")
    ] = None,
) -> None:
    """Run workers only (a GPU node): claim tasks from the shared database, no HTTP. With
    several --model it claims the tasks routed to any of them, and only those."""
    from openmj.app import run_worker_node

    _logging()
    settings = _settings(
        data_dir=data_dir,
        video_model=video_model,
        caption_model=caption_model,
        providers_file=providers,
        workers=workers,
        database_url=database_url,
        metrics_port=metrics_port,
        **_model_settings(model, None, cpu_offload, compile),
    )
    engine = _load_engine(settings)
    asyncio.run(run_worker_node(settings, engine))


# --------------------------------------------------------------------------- keys


def _parse_expiry(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date: {value!r} (use YYYY-MM-DD or an ISO date-time)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@keys_app.command("create")
def keys_create(
    data_dir: DataDir = None,
    credits: Annotated[float | None, typer.Option(help="Starting credits")] = None,
    name: Annotated[str, typer.Option(help="A label for `keys list`")] = "",
    group: Annotated[str, typer.Option(help="Price group (its multiplier applies)")] = "default",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models this key may use (default: all)")
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Unfinished tasks at once")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry date, e.g. 2027-01-31")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    from openmj.accounts import create_key

    settings = _settings(data_dir=data_dir, database_url=database_url)
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    amount = settings.initial_key_credits if credits is None else credits
    new = _repo_call(
        settings,
        lambda repo: create_key(
            repo,
            credits=amount,
            name=name,
            group=group,
            models=model_list,
            rpm=rpm,
            concurrency=concurrency,
            expires_at=_parse_expiry(expires),
        ),
    )
    typer.echo(f"created {new.key.id} with {amount:g} credits", err=True)
    typer.echo(new.secret)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, database_url: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (id, prefix, group, credits, limits, state); secrets are never shown again."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    keys = _repo_call(settings, lambda repo: repo.list_keys())
    for k in keys:
        state = "disabled" if k.disabled else "active"
        exp = datetime.fromtimestamp(k.expires_at, UTC).date().isoformat() if k.expires_at else "-"
        typer.echo(
            f"{k.id}\t{k.prefix}…\t{k.group}\t{k.credits:g}\t"
            f"models={','.join(k.models) if k.models else '*'}\trpm={k.rpm or '-'}\t"
            f"concurrency={k.concurrency or '-'}\texpires={exp}\t{state}\t{k.name}"
        )


@keys_app.command("disable")
def keys_disable(
    key: str, data_dir: DataDir = None, database_url: Annotated[str | None, typer.Option()] = None
) -> None:
    """Disable a key by id or prefix."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def run(repo: Any) -> bool:
        found = await repo.key_by_id_or_prefix(key)
        return found is not None and await repo.set_disabled(found.id, True)

    if not _repo_call(settings, run):
        typer.echo(f"no such key: {key}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled {key}")


@keys_app.command("grant")
def keys_grant(
    key: str,
    amount: float,
    data_dir: DataDir = None,
    database_url: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add (or with a negative amount, remove) credits."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def run(repo: Any) -> float | None:
        found = await repo.key_by_id_or_prefix(key)
        return None if found is None else await repo.grant(found.id, amount)

    balance = _repo_call(settings, run)
    if balance is None:
        typer.echo(f"no such key: {key}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{key}: balance {balance:g}")


@app.command("callback-secret")
def callback_secret(data_dir: DataDir = None) -> None:
    """Print the key callbacks are signed with (give it to the receivers; see docs/callbacks.md)."""
    settings = _settings(data_dir=data_dir)
    typer.echo(settings.resolved_callback_secret().decode())


# --------------------------------------------------------------------------- models


@app.command()
def models(
    model: ModelOption = None,
    version_map: VersionMapOption = None,
    video_model: Annotated[str | None, typer.Option(help="The video model it serves")] = None,
) -> None:
    """The model presets (image and video): weights, pipeline, licence, GPU memory, operations and
    what each family cannot do; then what this deployment serves (OPENMJ_MODEL, OPENMJ_VERSION_MAP,
    OPENMJ_VIDEO_MODEL) and where each Midjourney version goes. Loads nothing."""
    from rich.console import Console
    from rich.table import Table

    from openmj.app import served_models
    from openmj.core.families import family
    from openmj.engines.local.engine import IMAGE, VIDEO
    from openmj.engines.local.presets import (
        CAPTION_PRESETS,
        PRESETS,
        VIDEO_PRESETS,
        resolve_caption_model,
        resolve_preset,
        resolve_video_preset,
    )
    from openmj.language.models import LICENCES
    from openmj.language.models import PRESETS as PRESETS_TRANSLATION

    settings = _settings(video_model=video_model, **_model_settings(model, version_map, None, None))
    try:
        served = served_models(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    served_video = resolve_video_preset(resolve_preset(settings.model_names[0]), settings.video_model)
    table = Table("preset", "kind", "weights", "pipeline", "licence", "GPU GB", "operations", "served here")
    operations = ", ".join(sorted(o.value for o in IMAGE))
    for p in PRESETS.values():
        traits = family(p.family)
        limits = [] if traits.references != "img2img" else ["no --sref/--oref"]
        limits += [] if traits.tile else ["no --tile"]
        ops = operations + (f" ({'; '.join(limits)})" if limits else "")
        table.add_row(
            p.name, f"image ({traits.label})", p.source, p.pipeline, p.licence,
            f"{p.vram_gb:g}" if p.vram_gb else "-", ops, "yes" if p.name in served.caps else "",
        )  # fmt: skip
    for v in VIDEO_PRESETS.values():
        table.add_row(
            v.name, f"video ({v.fps:g} fps)", v.source, "WanImageToVideoPipeline", v.licence, "-",
            ", ".join(sorted(o.value for o in VIDEO)),
            "yes" if served_video is not None and v.name == served_video.name else "",
        )  # fmt: skip
    for name, source in CAPTION_PRESETS.items():
        served_caption = resolve_caption_model(
            resolve_preset(settings.model_names[0]), settings.caption_model
        )
        table.add_row(
            name, "captioner", source, "Florence-2", "MIT", "-", "describe",
            "yes" if served_caption == source else "",
        )  # fmt: skip
    for lang, source in PRESETS_TRANSLATION["opus-mt"].items():
        table.add_row(
            f"opus-mt ({lang})", "translator", source, "Marian", LICENCES.get(source, "-"), "-",
            "prompt translation", "",
        )  # fmt: skip
    console = Console(width=220)
    console.print(table)
    video_text = served_video.name if served_video else "none"
    console.print(f"This deployment serves: image models {', '.join(served.names)}; video model {video_text}")
    routes = ", ".join(f"{k} → {v}" for k, v in sorted(served.version_map.items()))
    console.print(f"Version map: {routes}")
    console.print(
        f"Describe: {settings.caption_model} (--caption-model); prompt translation: "
        f"{settings.translation_model} (--translation-model), scope {settings.translate_prompts}"
    )


# --------------------------------------------------------------------------- prompt


@prompt_app.command("parse")
def prompt_parse(
    text: str,
    version: Annotated[
        str, typer.Option(help='Version context: 7, 6.1, 6, 5.2, 5.1, "niji 6", "niji 7"')
    ] = "7",
) -> None:
    """Print the normal form of a prompt as JSON (exit 0 valid, 1 invalid)."""
    from openmj.core.prompt import normal_form

    result = normal_form(text, version)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    raise typer.Exit(0 if result.get("ok") else 1)


# --------------------------------------------------------------------------- providers


def _providers(path: Path | None) -> list[Any]:
    from openmj.relay.providers import ProvidersError, load_providers

    path = path or _settings().providers_file
    if path is None:
        typer.echo("error: no providers file (--providers FILE or OPENMJ_PROVIDERS_FILE)", err=True)
        raise typer.Exit(2)
    try:
        return load_providers(path)
    except ProvidersError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@providers_app.command("list")
def providers_list(providers: ProvidersOption = None) -> None:
    """The providers, by tier: dialect, address, weight, what they serve (keys never shown)."""
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "dialect", "base URL", "priority", "weight", "operations", "key")
    for p in sorted(_providers(providers), key=lambda p: -p.priority):
        ops = (
            "everything the local model does"
            if p.dialect == "local"
            else ", ".join(sorted(o.value for o in p.serves))
        )
        key = "set" if p.secret else ("-" if p.dialect == "local" else "MISSING")
        table.add_row(p.name, p.dialect, p.base_url or "-", str(p.priority), f"{p.weight:g}", ops, key)
    Console(width=200).print(table)


@providers_app.command("check")
def providers_check(
    providers: ProvidersOption = None,
    data_dir: DataDir = None,
    database_url: Annotated[str | None, typer.Option(help="The gateway's database URL")] = None,
) -> None:
    """Ask each provider whether it answers and what balance its key has; exit 1 if one fails.
    With the gateway's data folder or database: the cool-downs its nodes share, and a refused key
    found accepted again put back in service for every node."""
    import time

    from rich.console import Console
    from rich.table import Table

    from openmj.relay.check import check_provider, review_cooldowns

    checked = {p.name: (p, check_provider(p)) for p in _providers(providers)}
    cooling: dict[str, str] = {}
    if data_dir is not None or database_url is not None:
        settings = _settings(data_dir=data_dir, database_url=database_url)
        results = {name: result for name, (_, result) in checked.items()}
        cooling = _repo_call(settings, lambda repo: review_cooldowns(repo.db, results, time.time()))
    table = Table("name", "dialect", "reachable", "key", "balance", "cooling down", "detail")
    for name, (p, result) in checked.items():
        reachable, cool = "yes" if result.reachable else "NO", cooling.get(name, "-")
        table.add_row(name, p.dialect, reachable, result.key, result.balance, cool, result.detail)
    Console(width=200).print(table)
    if any(not result.ok for _, result in checked.values()):
        raise typer.Exit(1)


@app.command("usage")
def usage(
    data_dir: DataDir = None,
    database_url: Annotated[str | None, typer.Option(help="The database URL")] = None,
    days: Annotated[float, typer.Option(help="The period: tasks created in the last DAYS days")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Relayed tasks per provider: completed, failed (refunded), credits charged here, and what
    they cost upstream (the providers file's `cost`, and the upstream's own figure where given)."""
    import json
    import time
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from openmj.relay.engine import RELAY_MODEL
    from openmj.relay.usage import summarise
    from openmj.store.usage import relayed_since

    overrides: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
    since = time.time() - days * 86400
    rows = _repo_call(_settings(**overrides), lambda repo: relayed_since(repo, since, RELAY_MODEL))
    summary = summarise(rows)
    if as_json:
        typer.echo(json.dumps({"days": days, "providers": [asdict(u) for u in summary]}))
        return
    table = Table("provider", "completed", "failed", "charged (credits)", "upstream cost", "upstream credits")
    for u in summary:
        cost = ", ".join(f"{v:g} {unit}".strip() for unit, v in sorted(u.cost.items())) or "-"
        table.add_row(
            u.provider, str(u.completed), str(u.failed), f"{u.charged:g}", cost, f"{u.upstream_credits:g}"
        )
    Console(width=200).print(table)


# --------------------------------------------------------------------------- client

# imagine, upscale, vary, zoom, pan, status, balance: a client of a running openmj (docs/client.md)
register_client_commands(app)


if __name__ == "__main__":
    app()
