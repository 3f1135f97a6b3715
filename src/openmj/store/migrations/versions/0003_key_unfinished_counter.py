"""a per-key count of unfinished tasks, kept with every transition instead of counted at submit

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("unfinished", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE api_keys SET unfinished = (SELECT count(*) FROM tasks WHERE tasks.owner = api_keys.id "
        "AND tasks.status IN ('pending', 'processing'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("unfinished")
