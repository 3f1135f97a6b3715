"""Settings: OPENMJ_* environment variables, overridden by CLI flags."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENMJ_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite in data_dir
    # the served image models, comma-separated (`--model A --model B`): the first is the main model
    model: str = "sd15-lcm"
    # Midjourney version → served model, e.g.
    # OPENMJ_VERSION_MAP='{"niji": "z-image-turbo", "6": "sdxl-lightning"}'
    # (defaults: everything to the main model, niji to the second model when there is one)
    version_map: dict[str, str] = Field(default_factory=dict)
    # upstream Midjourney providers (docs/relay.md): with a file, tasks are relayed to them
    providers_file: Path | None = None
    relay_concurrency: int = 256  # relayed tasks one worker has in flight at once (each a waiting thread)
    cpu_offload: bool = False  # a GPU too small for the model: components move to it while they run
    compile: bool = False  # torch.compile the denoiser (the first job pays the compile time)
    video_model: str | None = None  # default: the image preset's own (tiny → tiny-video); "none" = off
    # Describe's captioning model: "auto" (the tiny twin with a tiny image model, else
    # florence-2-base), a preset of engines/local/presets.py CAPTION_PRESETS, a folder, a hub id, "none"
    caption_model: str = "auto"
    # prompt translation (docs/prompt.md): "auto" (the tiny twin with a tiny image model, the
    # opus-mt preset where a worker runs, off on an API-only node), a preset of
    # openmj.language.models, "none", or LANG=MODEL pairs
    translation_model: str = "auto"
    # what requests without a translation flag (midjourney-proxy, EvoLink) get: off | cjk | all
    translate_prompts: str = "cjk"
    public_url: str | None = None  # default: http://host:port
    secret_key: str | None = None  # default: generated once, kept in data_dir/secret_key
    allow_private_network: bool = False
    callback_secret: str | None = None  # default: derived from the secret key (`openmj callback-secret`)

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # in-process workers; the local engine still runs one job at a time per device
    run_worker: bool = True

    # queue
    lease_seconds: float = 30.0  # a crashed worker's task returns to the queue after this long
    heartbeat_seconds: float = 1.0
    reaper_seconds: float = 2.0
    max_attempts: int = 3  # a task that kills its worker this many times fails (and is refunded)
    task_timeout_seconds: float = 20 * 60  # EvoLink documents ~20 minutes (EvoLink's mj-v7 page)
    poll_seconds: float = 0.5  # worker idle poll when no wake-up arrives

    # the worker registry (docs/deployment.md, "Which models are served"): each worker process
    # records itself this often; one not heard from for `worker_ttl_seconds` counts as gone
    registry_seconds: float = 10.0
    worker_ttl_seconds: float = 45.0

    # graceful stop (docs/deployment.md, "Stopping a node"): after SIGTERM or SIGINT a node claims
    # nothing new and /readyz answers 503; running tasks get `drain_seconds` to finish before they
    # go back to the queue; an API node keeps answering for `drain_notice_seconds` at least, so a
    # load balancer that polls /readyz stops sending it requests first. A second signal stops at once.
    drain_seconds: float = 25.0
    drain_notice_seconds: float = 0.0

    # /metrics (docs/metrics.md): latency histograms cover the tasks finished this long ago at
    # most; the database is read at most once per cache period; a worker node's own port
    metrics_window_seconds: float = 3600.0
    metrics_cache_seconds: float = 5.0
    metrics_port: int | None = None

    # media and retention
    # where results are written (docs/deployment.md "Media on S3"): unset = data_dir/media,
    # s3://bucket/prefix = objects prefix/<task id>/<name> in an S3-compatible bucket
    media_url: str | None = None
    # S3 endpoint, region and credentials; unset = boto3's own chain (AWS_ENDPOINT_URL, AWS_REGION,
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_path_style: bool | None = None  # bucket in the path, not the host; default: on with an endpoint
    # how /media links answer from S3: "stream" through this node, or "presigned" (302 to the store)
    media_redirect: Literal["stream", "presigned"] = "stream"
    media_cleanup_seconds: float = 600.0
    # finished tasks older than this are deleted (in batches, between other writes); their links
    # expired long before (15 days at most). 0 keeps every task forever.
    task_retention_days: float = 90.0
    max_body_bytes: int = 1024 * 1024  # larger request bodies get 413

    # accounts
    initial_key_credits: float = 1000.0
    # per-key rpm counted in this process (local) or by every API node together (database);
    # auto: the database on PostgreSQL, where several nodes may share it
    rate_limits: Literal["auto", "local", "database"] = "auto"
    default_rpm: int = 10_000  # APIXO documents 10,000 requests/minute (APIXO's Midjourney page)
    default_concurrency: int = 1_000
    queue_cap: int = 100_000  # global cap on unfinished tasks

    # credits per task: overrides of the defaults in openmj.core.pricing, keyed "operation:speed"
    # or "operation:speed:model", e.g. OPENMJ_PRICES='{"imagine:fast": 10, "upscale:fast": 5}'
    prices: dict[str, float] = Field(default_factory=dict)
    # price multiplier per key group, e.g. OPENMJ_GROUP_MULTIPLIERS='{"vip": 0.8, "reseller": 0.5}'
    group_multipliers: dict[str, float] = Field(default_factory=dict)
    # the operator's Bearer token for /admin/api (docs/studio.md); unset: the admin API is off
    admin_token: str | None = None

    device: str | None = None  # "cuda", "cpu"; default: cuda when available
    seed: int | None = Field(default=None, description="fixed base seed for tests/benchmarks")

    @property
    def model_names(self) -> list[str]:
        names = [m.strip() for m in self.model.split(",") if m.strip()]
        return list(dict.fromkeys(names)) or ["sd15-lcm"]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'openmj.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def resolved_secret(self) -> bytes:
        """The HMAC key for media URLs; generated once per data dir so links survive restarts."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def resolved_callback_secret(self) -> bytes:
        """The key callbacks are signed with: shared with receivers, so distinct from the URL key."""
        if self.callback_secret:
            return self.callback_secret.encode()
        return hmac.new(self.resolved_secret(), b"openmj callbacks", hashlib.sha256).hexdigest().encode()
