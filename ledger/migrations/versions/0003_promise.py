"""The promise: a checkout hold keeps the option it held and the date it promised; a channel
may source with the inventory-aware bid prices.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:12:31.054890
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD COLUMN, as in 0002: SQLite's batch mode would rebuild the tables.
def upgrade() -> None:
    op.add_column(
        "channel",
        sa.Column("inventory_aware", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "checkouthold",
        sa.Column("option", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    )
    op.add_column("checkouthold", sa.Column("promised_date", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("checkouthold", "promised_date")
    op.drop_column("checkouthold", "option")
    op.drop_column("channel", "inventory_aware")
