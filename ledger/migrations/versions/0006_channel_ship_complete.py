"""A channel's ship-complete rule: how long its ship-complete orders wait for every line, and
what they do then ("ask" a person or "split" into ship-partial).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.add_column(
            sa.Column(
                "ship_complete_wait_seconds",
                sa.Float(),
                nullable=False,
                server_default=sa.text("259200.0"),  # 3 days
            )
        )
        batch.add_column(
            sa.Column(
                "ship_complete_then",
                sqlmodel.sql.sqltypes.AutoString(length=10),
                nullable=False,
                server_default="ask",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.drop_column("ship_complete_then")
        batch.drop_column("ship_complete_wait_seconds")
