"""Bid prices: each re-solve of the inventory-aware policy's LP (a run) and the prices it stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:16:51.445357
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# New tables only: nothing existing is altered, so no batch mode is needed.
def upgrade() -> None:
    op.create_table(
        "bidpricerun",
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("solved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("window_end", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("orders_counted", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("skus", sa.Integer(), nullable=False),
        sa.Column("solve_seconds", sa.Float(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_bidpricerun_solved_at", "bidpricerun", ["solved_at"], unique=False)
    op.create_table(
        "bidprice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["bidpricerun.run_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "node_id", "sku"),
    )
    op.create_index("ix_bidprice_run_id", "bidprice", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bidprice_run_id", table_name="bidprice")
    op.drop_table("bidprice")
    op.drop_index("ix_bidpricerun_solved_at", table_name="bidpricerun")
    op.drop_table("bidpricerun")
