"""A channel's maximum shipments per order: its orders leave from at most this many nodes (the
ruleset's max_splits the allocation, the checkout and the backorder sweep plan under); NULL, as
every existing channel gets, is no limit.

Revision ID: 0010_channel_max_shipments
Revises: 0009_reservation_per_shipment
Create Date: 2026-12-02 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_channel_max_shipments"
down_revision: str | Sequence[str] | None = "0009_reservation_per_shipment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.add_column(sa.Column("max_shipments_per_order", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel") as batch:
        batch.drop_column("max_shipments_per_order")
