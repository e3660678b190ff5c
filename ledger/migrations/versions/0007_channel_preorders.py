"""A channel's pre-orders: whether its checkout may promise from incoming stock (purchase orders,
transfers in transit) with the incoming date, and accept orders that wait for it.

Revision ID: 0007_channel_preorders
Revises: 0006
Create Date: 2026-12-01 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_channel_preorders"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.add_column(
            sa.Column(
                "allow_preorders",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.drop_column("allow_preorders")
