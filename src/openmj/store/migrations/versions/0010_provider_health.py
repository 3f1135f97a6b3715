"""provider_health: relay providers cooling down, shared by every gateway node

Revision ID: 0010
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_health",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("until", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("provider_health")
