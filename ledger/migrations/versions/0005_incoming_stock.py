"""Incoming stock: purchase order and transfer lines, and the `incoming` counter of a position
with the `d_incoming` of its movements, so reconcile rebuilds incoming like every counter.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:47:29.187869
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incomingline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("from_node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["node.node_id"]),
        sa.ForeignKeyConstraint(["sku"], ["sku.sku"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "reference", "line"),
    )
    for column in ("expected_date", "node_id", "sku", "status"):
        op.create_index(f"ix_incomingline_{column}", "incomingline", [column], unique=False)
    # Plain ADD COLUMN with a default, on both databases: no table rebuild of the (large)
    # movement table, and every existing row reads 0, which is what it moved.
    op.add_column(
        "stockmovement", sa.Column("d_incoming", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "stockposition", sa.Column("incoming", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("stockposition") as batch_op:
        batch_op.drop_column("incoming")
    with op.batch_alter_table("stockmovement") as batch_op:
        batch_op.drop_column("d_incoming")
    for column in ("status", "sku", "node_id", "expected_date"):
        op.drop_index(f"ix_incomingline_{column}", table_name="incomingline")
    op.drop_table("incomingline")
