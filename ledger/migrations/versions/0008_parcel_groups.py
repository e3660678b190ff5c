"""Orders grouped into fewer parcels (issue 14, item 6): a channel's consolidation window, and
the parcel groups with their members and shared label.

Revision ID: 0008_parcel_groups
Revises: 0007_channel_preorders
Create Date: 2026-12-01 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008_parcel_groups"
down_revision: str | Sequence[str] | None = "0007_channel_preorders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.add_column(
            sa.Column(
                "consolidation_window_seconds",
                sa.Float(),
                nullable=False,
                server_default=sa.text("0.0"),  # off: every order its own parcel, as before
            )
        )
    op.create_table(
        "parcelgroup",
        sa.Column("parcel_id", _text(40), nullable=False),
        sa.Column("channel", _text(40), nullable=False),
        sa.Column("customer_id", _text(100), nullable=False),
        sa.Column("address_key", _text(300), nullable=False),
        sa.Column("node_id", _text(64), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closes_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("label_claimed_by", _text(220), nullable=True),
        sa.Column("carrier", _text(40), nullable=True),
        sa.Column("service", _text(40), nullable=True),
        sa.Column("tracking_number", _text(100), nullable=True),
        sa.Column("label_id", _text(100), nullable=True),
        sa.PrimaryKeyConstraint("parcel_id"),
    )
    op.create_index(
        "ix_parcelgroup_key",
        "parcelgroup",
        ["channel", "customer_id", "address_key", "node_id"],
        unique=False,
    )
    op.create_table(
        "parcelmember",
        sa.Column("shipment_id", _text(220), nullable=False),
        sa.Column("parcel_id", _text(40), nullable=False),
        sa.Column("order_id", _text(200), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("status", _text(10), nullable=False),
        sa.Column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("left_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["parcel_id"], ["parcelgroup.parcel_id"]),
        sa.PrimaryKeyConstraint("shipment_id"),
    )
    op.create_index(op.f("ix_parcelmember_parcel_id"), "parcelmember", ["parcel_id"], unique=False)
    op.create_index(op.f("ix_parcelmember_order_id"), "parcelmember", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_parcelmember_order_id"), table_name="parcelmember")
    op.drop_index(op.f("ix_parcelmember_parcel_id"), table_name="parcelmember")
    op.drop_table("parcelmember")
    op.drop_index("ix_parcelgroup_key", table_name="parcelgroup")
    op.drop_table("parcelgroup")
    with op.batch_alter_table("channel") as batch:
        batch.drop_column("consolidation_window_seconds")
