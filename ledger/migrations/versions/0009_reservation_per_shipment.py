"""Reservations keyed by order, shipment and line (was order, line and node): a line divided
between nodes (issue 14, item 1) can come back to a node that already shipped, or still holds,
another piece of it, as a shipment of its own.

Revision ID: 0009_reservation_per_shipment
Revises: 0008_parcel_groups
Create Date: 2026-12-01 23:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_reservation_per_shipment"
down_revision: str | Sequence[str] | None = "0008_parcel_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The baseline's constraint has no name of its own: PostgreSQL named it, and on SQLite the batch
# copy names it by this convention when it reads the table.
_UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
_OLD_COLUMNS = ["order_id", "line_no", "node_id"]
_NEW = "uq_reservation_shipment_line"


def _old_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "reservation_order_id_line_no_node_id_key"
    return "uq_reservation_order_id_line_no_node_id"


def upgrade() -> None:
    with op.batch_alter_table("reservation", naming_convention=_UNNAMED) as batch:
        batch.drop_constraint(_old_name(), type_="unique")
        batch.create_unique_constraint(_NEW, ["order_id", "shipment_id", "line_no"])


def downgrade() -> None:
    with op.batch_alter_table("reservation", naming_convention=_UNNAMED) as batch:
        batch.drop_constraint(_NEW, type_="unique")
        batch.create_unique_constraint(_old_name(), _OLD_COLUMNS)
