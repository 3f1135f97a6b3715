"""API keys (stored as SHA-256 hashes), authentication and per-key request rate limits: in this
process (`RateLimiter`, one node on SQLite) or for the deployment (`SharedRateLimiter`)."""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from openmj.core.accounts import ApiKey
from openmj.core.tasks import ErrorCode, TaskError
from openmj.store.db import Database
from openmj.store.limits import take_quota
from openmj.store.repo import Repository

KEY_PREFIX = "sk-"
_ALPHABET = string.ascii_letters + string.digits


def hash_key(secret: str) -> str:
    # keys are 48 random characters, so a fast hash is enough (no password stretching needed)
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(48))


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str


async def create_key(
    repo: Repository,
    *,
    credits: float,
    name: str = "",
    group: str = "default",
    models: list[str] | None = None,
    rpm: int | None = None,
    concurrency: int | None = None,
    expires_at: float | None = None,
) -> NewKey:
    secret = new_secret()
    key = await repo.create_key(
        key_id="key_" + secrets.token_hex(6),
        key_hash=hash_key(secret),
        prefix=secret[:10],
        credits=credits,
        name=name,
        group=group,
        models=models,
        rpm=rpm,
        concurrency=concurrency,
        expires_at=expires_at,
    )
    return NewKey(key=key, secret=secret)


class RateLimiter:
    """Sliding one-minute window per key, in this process.

    Several API nodes each count their own requests; an operator running N nodes behind a
    balancer gets up to N × rpm. (A shared counter would cost a database write per request.)
    """

    WINDOW = 60.0

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def check(self, key_id: str, rpm: int) -> None:
        now = time.monotonic()
        hits = self._hits.setdefault(key_id, deque())
        while hits and hits[0] <= now - self.WINDOW:
            hits.popleft()
        if len(hits) >= rpm:
            retry_after = max(1.0, hits[0] + self.WINDOW - now)
            raise TaskError(
                ErrorCode.RATE_LIMITED,
                f"Too many requests: the limit is {rpm} per minute, please try again later",
                429,
                retry_after=retry_after,
            )
        hits.append(now)

    async def take(self, key_id: str, rpm: int) -> None:
        self.check(key_id, rpm)


class SharedRateLimiter:
    """Per-key requests per minute for the whole deployment, however many API nodes share the
    database (PostgreSQL): each node takes quota from the key's counter for the calendar minute
    (store/limits.py) in blocks of rpm/`BLOCKS`, and spends it locally. So a busy key costs one
    database write per block, not per request, and the nodes together never grant more than rpm
    in a minute; quota a node took and did not use is lost at the minute's end (it errs on the
    side of refusing). With small limits the block is one request: exact, a write per request."""

    BLOCKS = 50

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock
        self._held: dict[str, tuple[int, int]] = {}  # key id → (minute, requests left here)

    async def take(self, key_id: str, rpm: int) -> None:
        now = self._clock()
        minute = int(now // 60)
        held_minute, left = self._held.get(key_id, (minute, 0))
        if held_minute != minute or left <= 0:
            left = await take_quota(self.db, key_id, minute, rpm, max(1, rpm // self.BLOCKS))
            if left <= 0:
                self._held[key_id] = (minute, 0)
                raise TaskError(
                    ErrorCode.RATE_LIMITED,
                    f"Too many requests: the limit is {rpm} per minute, please try again later",
                    429,
                    retry_after=max(1.0, 60 - now % 60),
                )
        self._held[key_id] = (minute, left - 1)
        if len(self._held) > 100_000:  # keys idle since an earlier minute
            self._held = {k: v for k, v in self._held.items() if v[0] == minute}


class Authenticator:
    """Keys are looked up by hash once, then served from memory until any process changes any key
    (`Database.key_changes`: disable, grant, new group), so a poll costs no key query."""

    CACHE_SIZE = 10_000
    CACHE_SECONDS = 60.0  # a bound even if a change notification were lost

    def __init__(self, repo: Repository, limiter: RateLimiter | SharedRateLimiter, default_rpm: int) -> None:
        self.repo = repo
        self.limiter = limiter
        self.default_rpm = default_rpm
        self._cache: OrderedDict[str, tuple[ApiKey, tuple[int, ...], float]] = OrderedDict()

    async def _lookup(self, key_hash: str) -> ApiKey | None:
        generation = self.repo.db.key_changes.generation()
        now = time.monotonic()
        hit = self._cache.get(key_hash)
        if hit is not None and hit[1] == generation and now - hit[2] < self.CACHE_SECONDS:
            self._cache.move_to_end(key_hash)
            return hit[0]
        key = await self.repo.key_by_hash(key_hash)
        if key is None:
            self._cache.pop(key_hash, None)  # unknown secrets are not cached: nothing to fill
            return None
        self._cache[key_hash] = (key, generation, now)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return key

    async def authenticate(self, secret: str | None) -> ApiKey:
        """Resolve a secret to a usable key, counting the request against the key's rate limit."""
        if not secret:
            raise TaskError(
                ErrorCode.UNAUTHORIZED, "Missing API key: send 'Authorization: Bearer <key>'", 401
            )
        key = await self._lookup(hash_key(secret.strip()))
        if key is None:
            raise TaskError(ErrorCode.UNAUTHORIZED, "Invalid or expired token", 401)
        if key.disabled:
            raise TaskError(ErrorCode.KEY_DISABLED, "This API key is disabled", 403)
        if key.expires_at is not None and key.expires_at <= time.time():
            raise TaskError(ErrorCode.KEY_EXPIRED, "This API key has expired", 403)
        await self.limiter.take(key.id, key.rpm or self.default_rpm)
        return key
