"""Tables. Times are float Unix seconds so SQLite and PostgreSQL behave the same."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Double, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a key in `keys list`
    name: Mapped[str] = mapped_column(String(200), default="")
    group: Mapped[str] = mapped_column("group_name", String(64), default="default")
    credits: Mapped[float] = mapped_column(Double, default=0.0)
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None = every model
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double)
    # pending + processing tasks of this key, changed in the transaction of every transition, so
    # the concurrency limit is checked with the credit reservation in one UPDATE (no count)
    unfinished: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LedgerRow(Base):
    """Append-only: the sum of `amount` per key always equals the key's balance."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # grant | reserve | refund
    amount: Mapped[float] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    dialect: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    speed: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[int] = mapped_column(BigInteger)  # Midjourney seeds go up to 2**32 - 1
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    updated_at: Mapped[float] = mapped_column(Double)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    grid: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    credits_reserved: Mapped[float] = mapped_column(Double, default=0.0)
    credits_charged: Mapped[float] = mapped_column(Double, default=0.0)
    user_group: Mapped[str] = mapped_column(String(64), default="default")
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Double, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[float | None] = mapped_column(Double, nullable=True)
    media_expires_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    media_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # the served model that runs it: a worker claims only its own models' tasks ("" = any)
    engine_model: Mapped[str] = mapped_column(String(64), default="", server_default="")
    output: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, nullable=True
    )  # a text result (describe, shorten)

    __table_args__ = (
        # the claim query: pending rows by priority then age
        Index("ix_tasks_claim", "status", "priority", "created_at"),
        Index("ix_tasks_claim_model", "status", "engine_model", "priority", "created_at"),
        Index("ix_tasks_owner_created", "owner", "created_at"),
        # per-key unfinished count at every submit: without it the count scans all of a key's tasks
        Index("ix_tasks_owner_status", "owner", "status"),
        Index("ix_tasks_status_lease", "status", "lease_expires"),
        # the latest completed tasks of an operation (average run time): without it, a full scan
        Index("ix_tasks_done_recent", "status", "operation", "finished_at"),
        Index("ix_tasks_finished", "finished_at"),  # the retention job's oldest finished tasks
        Index("ix_tasks_media_expiry", "media_deleted", "media_expires_at"),
    )


class OutboxRow(Base):
    """Callbacks to deliver; written in the same transaction as the status change they report."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    dialect: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(32))  # status the delivery reports (or progress:NN)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Double)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | dead
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    lease_expires: Mapped[float | None] = mapped_column(Double, nullable=True)

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)


class IdempotencyRow(Base):
    """An `Idempotency-Key` a key sent with a create, and the task it made (store/idempotency.py)."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # the request it came with
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_idempotency_created", "created_at"),)


class RateCountRow(Base):
    """Requests a key was granted in one calendar minute, by every API node together
    (store/limits.py; PostgreSQL deployments)."""

    __tablename__ = "rate_counts"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time // 60
    used: Mapped[int] = mapped_column(Integer, default=0)


class ProviderHealthRow(Base):
    """A relay provider cooling down, seen by every gateway node (relay/health.py, store/health.py)."""

    __tablename__ = "provider_health"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[float] = mapped_column(Double)  # Unix time the cool-down ends
    reason: Mapped[str] = mapped_column(String(200), default="")


class WorkerNodeRow(Base):
    """A worker process and what it serves, rewritten by it every `registry_seconds`
    (store/registry.py, core/workers.py)."""

    __tablename__ = "worker_nodes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    models: Mapped[list[str]] = mapped_column(JSON)
    operations: Mapped[list[str]] = mapped_column(JSON)
    workers: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[float] = mapped_column(Double)
    last_seen: Mapped[float] = mapped_column(Double)
