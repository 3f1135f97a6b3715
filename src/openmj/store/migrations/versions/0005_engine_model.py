"""tasks.engine_model: the served model that runs a task, so a worker claims only its models' tasks

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("engine_model", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_tasks_claim_model", "tasks", ["status", "engine_model", "priority", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_claim_model", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("engine_model")
