"""index tasks (owner, status) for the per-key unfinished count

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_owner_status", "tasks", ["owner", "status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_status", table_name="tasks")
