"""create_app(settings) → the FastAPI app; the lifespan wires store, queue, engine and media."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openmj import __version__
from openmj.accounts import Authenticator, RateLimiter, SharedRateLimiter
from openmj.admin import routes as admin_routes
from openmj.callbacks import CallbackDeliverer, Renderer
from openmj.config import Settings
from openmj.core.pricing import PriceTable
from openmj.core.routing import ModelCaps, ServedModels
from openmj.core.tasks import ErrorCode, Operation, TaskError
from openmj.dialects import DIALECTS, openapi, render_error
from openmj.dialects.common import Context, Dialect
from openmj.engines.base import Engine
from openmj.inputs import InputResolver
from openmj.jsonwire import JSONResponse
from openmj.language.translator import LocalTranslator
from openmj.media.backend import MediaBackend, open_media
from openmj.media.grid import GRID_NAME
from openmj.media.signing import UrlSigner
from openmj.media.storage import MediaStore
from openmj.metrics import CONTENT_TYPE, Metrics, RequestMetrics, serve_node_metrics
from openmj.moderation import PromptModerator, image_moderator_from_env
from openmj.net import NetPolicy
from openmj.nodes import LiveWorkers, NodeRecord
from openmj.queue import Reaper, Worker
from openmj.readiness import probe
from openmj.relay import hooks as relay_hooks
from openmj.service import TaskService
from openmj.store.db import Database, KeyChanges
from openmj.store.repo import RELAY_CHANNEL, TASK_CHANNEL, Repository
from openmj.wakeup import Wakeup
from openmj.web import routes as web_routes

log = logging.getLogger("openmj.app")


@dataclass
class Runtime:
    """Everything the lifespan starts, for tests and the CLI to reach."""

    settings: Settings
    db: Database | None = None
    repo: Repository | None = None
    service: TaskService | None = None
    media: MediaBackend | None = None
    engine: Engine | None = None
    workers: list[Worker] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    ready: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    reaper: Reaper | None = None
    deliverer: CallbackDeliverer | None = None
    translator: LocalTranslator | None = None
    metrics: Metrics | None = None
    wakeup: Wakeup = field(default_factory=Wakeup)
    # set when the workers must claim nothing more (a drain, then the stop)
    no_claims: asyncio.Event = field(default_factory=asyncio.Event)
    worker_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    draining: bool = False
    node: NodeRecord | None = None  # this process's row in the worker registry
    live_workers: LiveWorkers | None = None


class BodyLimit:
    """413 for bodies over the limit, checked on Content-Length and while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = TaskError(
            ErrorCode.REQUEST_TOO_LARGE, f"Request body too large: the limit is {self.limit} bytes", 413
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await render_error(scope["path"], too_large)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await render_error(scope["path"], too_large)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings, engine: Engine | None = None, translator: LocalTranslator | None = None
) -> FastAPI:
    """The app. `engine` is the already-loaded engine for the in-process workers (None: API only);
    `translator` the loaded prompt translator (None: built at start when translation is on)."""
    runtime = Runtime(settings=settings, engine=engine, translator=translator)
    runtime.metrics = Metrics(lambda: len(runtime.workers))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(runtime, app)
        try:
            yield
        finally:
            await _stop(runtime)

    app = FastAPI(
        title="openmj",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONResponse,
        # Starlette's own slash redirect copies the request's Host into Location; ours is relative
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=runtime.metrics)  # outermost: sees every answer
    for dialect in DIALECTS:
        app.include_router(dialect.router)
    app.include_router(relay_hooks.router)  # the upstreams' callbacks of relayed tasks
    app.include_router(web_routes.router)  # the studio at / (docs/studio.md)
    app.include_router(admin_routes.router)
    app.mount("/studio/static", web_routes.static_files(), name="studio-static")
    openapi.install(app, [{"name": d.title, "description": f"the {d.title} API"} for d in DIALECTS])

    @app.exception_handler(TaskError)
    async def _task_error(request: Request, exc: TaskError) -> Response:
        level = logging.INFO if exc.http_status < 500 else logging.ERROR
        log.log(
            level,
            "%s %s -> %d %s: %s",
            request.method,
            request.url.path,
            exc.http_status,
            exc.code,
            exc.message,
        )
        return render_error(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        te = TaskError(
            ErrorCode.INVALID_PARAMETERS, f"Invalid parameter '{loc}': {err.get('msg', '')}", 400, param=loc
        )
        return await _task_error(request, te)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (moved := _slash_twin(app, request)) is not None:
            return RedirectResponse(moved, status_code=307)
        code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.INVALID_REQUEST
        te = TaskError(code, str(exc.detail), exc.status_code)
        return render_error(request.url.path, te)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        te = TaskError(ErrorCode.SERVICE_ERROR, "Internal server error", 500)
        return render_error(request.url.path, te)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if not runtime.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "model": settings.model,
                "workers": len(runtime.workers),
            }
        )

    @app.get(
        "/readyz",
        responses={503: {"description": "Starting, draining, or a check failed: `reasons` says which"}},
    )
    async def readyz() -> JSONResponse:
        """For load balancers: 200 when this node can serve, 503 with the reasons when not."""
        if not runtime.ready:
            return JSONResponse({"status": "starting", "reasons": ["starting"]}, status_code=503)
        if runtime.draining:
            return JSONResponse(
                {"status": "draining", "reasons": ["draining: this node is stopping"]}, status_code=503
            )
        assert runtime.db is not None and runtime.media is not None
        checks = await probe(runtime.db, runtime.media)
        reasons = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        body = {"status": "not_ready" if reasons else "ready", "checks": checks, "reasons": reasons}
        return JSONResponse(body, status_code=503 if reasons else 200)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text format (docs/metrics.md)."""
        assert runtime.metrics is not None
        return Response(await runtime.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/media/{task_id}/{name}")
    async def media(request: Request, task_id: str, name: str) -> Response:
        signer: UrlSigner = app.state.ctx.signer
        q = request.query_params
        if not signer.verify(request.url.path, q.get("exp"), q.get("kid"), q.get("sig")):
            return JSONResponse({"error": {"code": "forbidden", "message": "Invalid or expired link"}}, 403)
        media = runtime.media
        assert media is not None
        if not isinstance(media, MediaStore):  # a bucket (media/serve.py): streamed or redirected
            from openmj.media.s3 import S3MediaStore
            from openmj.media.serve import s3_response

            assert isinstance(media, S3MediaStore)
            presign = settings.media_redirect == "presigned"
            redirect_until = float(q["exp"]) if presign and q.get("exp") else None
            return await s3_response(media, task_id, name, request.headers.get("range"), redirect_until)
        path = media.path(task_id, name)
        if name == GRID_NAME and path is not None and not path.is_file():
            await asyncio.to_thread(media.ensure_grid, task_id)
        if path is None or not path.is_file():
            return _media_gone()
        return FileResponse(
            path,
            media_type="image/png" if name.endswith(".png") else None,
            headers={"Cache-Control": "private, max-age=3600"},
        )

    return app


def _media_gone() -> JSONResponse:
    return JSONResponse({"error": {"code": "not_found", "message": "This file no longer exists"}}, 404)


def _slash_twin(app: FastAPI, request: Request) -> str | None:
    """The relative URL of the route this path names with its trailing slash added or removed,
    or None. Relative, so a forged Host header can never choose where a client is sent."""
    path = request.url.path
    if path == "/":
        return None
    twin = path[:-1] if path.endswith("/") else path + "/"
    scope = {**request.scope, "path": twin}
    if not any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
        return None
    query = request.url.query
    return twin + (f"?{query}" if query else "")


def callback_renderers(context: Context) -> dict[str, Renderer]:
    """Each dialect's callback body, rendered when the row is delivered (the task's latest state)."""

    def renderer(dialect: Dialect) -> Renderer:
        return lambda task, event: (dialect.callback_payload(context, task, event), {})

    return {d.name: renderer(d) for d in DIALECTS}


def model_caps(
    model: str, video_model: str | None = None, *, main: bool = True, caption_model: str = "none"
) -> ModelCaps:
    """A served model's caps from its preset; only the main model carries the video and
    captioning models."""
    from openmj.core.families import family
    from openmj.engines.local.presets import resolve_caption_model, resolve_preset, resolve_video_preset

    preset = resolve_preset(model)
    traits = family(preset.family)
    references = (
        preset.ip_adapter is not None if traits.references == "ip_adapter" else traits.references == "native"
    )
    return ModelCaps(
        name=preset.name,
        references=references,
        segmenter=preset.segmenter is not None,
        video=main and resolve_video_preset(preset, video_model) is not None,
        describe=main and resolve_caption_model(preset, caption_model) is not None,
        family=preset.family,
    )


def translation_models(settings: Settings) -> dict[str, str]:
    """{language: model} of the prompt translator; {} when translation is off. "auto" is the tiny
    twin with a tiny image model, opus-mt where a worker runs (torch is loaded anyway), and off on
    an API-only node. ValueError names a bad `--translation-model` or `--translate-prompts`."""
    from openmj.core.prompt.translation import SCOPES
    from openmj.engines.local.presets import resolve_preset
    from openmj.language.models import AUTO, parse_models

    if settings.translate_prompts not in SCOPES:
        raise ValueError(
            f"--translate-prompts must be one of {', '.join(SCOPES)}, not {settings.translate_prompts!r}"
        )
    tiny = resolve_preset(settings.model_names[0]).source == "tiny"
    if settings.translation_model.strip() == AUTO and not tiny and not settings.run_worker:
        # an API-only node stays free of torch unless translation is asked for by name
        log.info("prompt translation is off on this API-only node (--translation-model opus-mt turns it on)")
        return {}
    return parse_models(settings.translation_model, tiny_image_model=tiny)


def build_translator(settings: Settings) -> LocalTranslator | None:
    """The prompt translator (not loaded yet), or None when translation is off."""
    models = translation_models(settings)
    return LocalTranslator(models, settings.data_dir / "models") if models else None


def served_models(settings: Settings) -> ServedModels:
    """The models this deployment serves and its version map; a map naming a model that is not
    served stops the start with the reason (ValueError)."""
    caps = [
        model_caps(m, settings.video_model, main=i == 0, caption_model=settings.caption_model)
        for i, m in enumerate(settings.model_names)
    ]
    if settings.providers_file is not None:  # every task goes through the relay (docs/relay.md)
        from openmj.relay.engine import RELAY_MODEL
        from openmj.relay.providers import load_providers

        providers = load_providers(settings.providers_file)
        local = any(p.dialect == "local" for p in providers)  # then anything the local model does
        upstream = frozenset(o for p in providers if p.dialect != "local" for o in p.serves)
        base = caps[0] if local else ModelCaps(segmenter=False)
        video = Operation.VIDEO in upstream or (local and base.video)
        describe = Operation.DESCRIBE in upstream or (local and base.describe)
        segmenter = Operation.REMOVE_BG in upstream or (local and base.segmenter)
        offers = None if local else tuple(p.offers for p in providers)  # a task must fit one
        caps = [
            replace(
                base,
                name=RELAY_MODEL,
                video=video,
                describe=describe,
                segmenter=segmenter,
                operations=None if local else upstream,
                offers=offers,
            )
        ]
    return ServedModels.build(caps, settings.version_map)


async def _start(rt: Runtime, app: FastAPI | None) -> None:
    s = rt.settings
    rt.loop = asyncio.get_running_loop()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    rt.db = Database(s.resolved_database_url)
    await rt.db.migrate()
    rt.repo = Repository(rt.db)
    if (share_health := getattr(rt.engine, "share_health", None)) is not None:
        share_health(rt.db, rt.loop)  # the relay: cool-downs seen by every node (docs/relay.md)
    rt.live_workers = LiveWorkers(rt.db, s.worker_ttl_seconds)
    models = served_models(s)
    if app is not None and rt.metrics is not None:  # an API node reports the database's numbers
        rt.metrics.watch_database(
            rt.db, s.metrics_window_seconds, s.metrics_cache_seconds, s.worker_ttl_seconds, models.caps
        )
    rt.media = open_media(s)
    wakeup = rt.wakeup
    net = NetPolicy(allow_private=s.allow_private_network)
    shared = s.rate_limits == "database" or (s.rate_limits == "auto" and not rt.db.sqlite)
    limiter = SharedRateLimiter(rt.db) if shared else RateLimiter()
    auth = Authenticator(rt.repo, limiter, s.default_rpm)
    if app is not None and rt.translator is None:  # an API: it translates prompts at submit
        rt.translator = build_translator(s)
        if rt.translator is not None:
            await asyncio.to_thread(rt.translator.load)
    rt.service = TaskService(
        rt.repo,
        auth,
        PriceTable.with_overrides(s.prices, s.group_multipliers),
        task_timeout=s.task_timeout_seconds,
        default_concurrency=s.default_concurrency,
        queue_cap=s.queue_cap,
        wakeup=wakeup,
        seed=s.seed,
        models=models,
        net=net,
        moderator=PromptModerator.from_env(),
        translator=rt.translator,
        translate_scope=s.translate_prompts,
        served=rt.live_workers.serves,
    )
    signer = UrlSigner(s.resolved_secret(), s.resolved_public_url)
    context = Context(service=rt.service, signer=signer, net=net)
    if app is not None:
        app.state.ctx = context
    rt.deliverer = CallbackDeliverer(rt.repo, callback_renderers(context), s.resolved_callback_secret(), net)
    rt.background.append(asyncio.create_task(rt.deliverer.run_forever(rt.stop)))
    if s.run_worker and rt.engine is not None:
        image_moderator = image_moderator_from_env()
        for _ in range(max(1, s.workers)):
            worker = Worker(
                rt.repo,
                rt.engine,
                rt.media,
                s,
                wakeup,
                prepare=InputResolver(rt.media, net),
                image_moderator=image_moderator,
                on_finish=lambda t: rt.service.forget_estimate(t.operation) if rt.service else None,
                on_engine_run=rt.metrics.observe_engine_run if rt.metrics else None,
            )
            rt.workers.append(worker)
            rt.worker_tasks.append(asyncio.create_task(worker.run_forever(rt.no_claims)))
        rt.background.extend(rt.worker_tasks)
        workers = rt.workers
        rt.node = NodeRecord(rt.db, rt.engine, len(workers), lambda: sum(w.running for w in workers))
        await rt.node.announce()  # the API nodes count on this node from now on
        rt.background.append(asyncio.create_task(rt.node.run_forever(rt.stop, s.registry_seconds)))
    if not rt.db.sqlite:
        key_change = rt.db.key_changes.remote_change
        channels: dict[str, Callable[[str], None]] = {KeyChanges.CHANNEL: lambda _p: key_change()}
        if rt.workers:
            channels[TASK_CHANNEL] = lambda _p: wakeup.notify()
            if (wake := getattr(rt.engine, "wake", None)) is not None:  # the relay (relay/hooks.py)
                channels[RELAY_CHANNEL] = wake
        rt.background.append(asyncio.create_task(_listen(rt.repo, rt.db, channels, rt.stop)))
    rt.reaper = Reaper(rt.repo, rt.media, s, wakeup)
    rt.background.append(asyncio.create_task(rt.reaper.run_forever(rt.stop)))
    rt.ready = True
    log.info(
        "openmj ready: %s, %d worker(s), database %s",
        s.resolved_public_url,
        len(rt.workers),
        "sqlite" if rt.db.sqlite else "postgresql",
    )


async def _listen(
    repo: Repository, db: Database, channels: dict[str, Callable[[str], None]], stop: asyncio.Event
) -> None:
    """LISTEN for what other nodes do (tasks queued, keys changed); on any failure fall back to
    polling (workers) and to re-reading keys (the key cache is dropped every retry), retrying later."""
    while not stop.is_set():
        try:
            db.key_changes.remote_change()  # whatever changed while not listening
            await repo.listen(channels, stop)
        except Exception as exc:  # the database restarted, a network blip: polling still works
            log.warning("LISTEN failed (%s); polling until it is back", exc)
            db.key_changes.remote_change()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)


async def drain(rt: Runtime, grace: float, notice: float = 0.0) -> None:
    """Stop taking work, keep the process up: /readyz answers 503, the workers claim nothing
    new and the registry says so; return once the running tasks finished or after `grace`
    seconds (the stop then hands the rest back to the queue), and not before `notice` seconds."""
    if rt.draining:
        return
    started = time.monotonic()
    rt.draining = True
    rt.no_claims.set()
    rt.wakeup.notify()  # idle workers see it now rather than at their next poll
    if rt.node is not None:
        await rt.node.drain()
    running = sum(w.running for w in rt.workers)
    log.info("draining: %d running task(s), up to %g s to finish", running, grace)
    if rt.worker_tasks:
        await asyncio.wait(rt.worker_tasks, timeout=grace)
    await asyncio.sleep(max(0.0, notice - (time.monotonic() - started)))
    left = sum(w.running for w in rt.workers)
    if left:
        log.warning("drained for %g s: %d task(s) still running are stopped and handed back", grace, left)


async def _stop(rt: Runtime) -> None:
    rt.ready = False
    rt.draining = True
    rt.no_claims.set()
    rt.stop.set()
    for w in rt.workers:
        w.shutdown()  # the engine stops at its next step and the task goes back to the queue
    if rt.background:
        await asyncio.wait(rt.background, timeout=15)
    for t in rt.background:
        t.cancel()
    for t in rt.background:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    if rt.node is not None:
        await rt.node.withdraw()
    if rt.db is not None:
        await rt.db.dispose()


async def run_worker_node(settings: Settings, engine: Engine) -> None:
    """`openmj worker`: workers and the reaper on the shared database, until SIGINT/SIGTERM."""
    import signal

    rt = Runtime(settings=settings.model_copy(update={"run_worker": True}), engine=engine)
    rt.metrics = Metrics(lambda: len(rt.workers))
    await _start(rt, None)
    # this node's own numbers (engine runs, workers) on a port of its own; the API nodes report the rest
    close_metrics = (
        serve_node_metrics(rt.metrics, settings.host, settings.metrics_port)
        if settings.metrics_port is not None
        else None
    )
    loop = asyncio.get_running_loop()
    signals: asyncio.Queue[int] = asyncio.Queue()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    await signals.get()
    # the first signal drains; a second one while draining stops at once
    draining = asyncio.create_task(drain(rt, settings.drain_seconds))
    second = asyncio.create_task(signals.get())
    await asyncio.wait({draining, second}, return_when=asyncio.FIRST_COMPLETED)
    for t in (draining, second):
        t.cancel()
    if close_metrics is not None:
        close_metrics()
    await _stop(rt)
