"""The Alembic migrations build exactly the schema the models describe (no drift)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from openmj.store.db import migrate_sync
from openmj.store.models import Base


def test_migrations_match_the_models(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    migrate_sync(f"sqlite+aiosqlite:///{db}")
    migrate_sync(f"sqlite+aiosqlite:///{db}")  # applying again is a no-op
    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
