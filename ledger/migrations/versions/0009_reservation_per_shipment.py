"""Reservations keyed by order, shipment and line (was order, line and node): a line divided
between nodes (issue 14, item 1) can come back to a node that already shipped, or still holds,
another piece of it, as a shipment of its own.

The downgrade puts the (order, line, node) key back, so it first makes those rows one: pieces of
a line at one node in the same state become the first piece's row with their units summed (what
the stock positions count is unchanged: an active row's units stay reserved, a released or
fulfilled row's stay uncounted). Pieces in different states (one shipped, one still reserved)
cannot be one row without misstating the ledger: the downgrade refuses, naming them.

Revision ID: 0009_reservation_per_shipment
Revises: 0008_parcel_groups
Create Date: 2026-12-01 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
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


class PiecesInDifferentStates(RuntimeError):
    """A line's pieces at one node that the old key cannot hold as one row."""


def downgrade() -> None:
    _merge_pieces_at_one_node()
    with op.batch_alter_table("reservation", naming_convention=_UNNAMED) as batch:
        batch.drop_constraint(_NEW, type_="unique")
        batch.create_unique_constraint(_old_name(), _OLD_COLUMNS)


_PIECES = sa.text(
    "select order_id, line_no, node_id, id, shipment_id, status, quantity, updated_at"
    " from reservation where (order_id, line_no, node_id) in ("
    "   select order_id, line_no, node_id from reservation"
    "   group by order_id, line_no, node_id having count(*) > 1)"
    " order by order_id, line_no, node_id, id"
)


def _merge_pieces_at_one_node() -> None:
    connection = op.get_bind()
    groups: dict[tuple[str, int, str], list[sa.Row]] = {}
    for row in connection.execute(_PIECES):
        groups.setdefault((row.order_id, row.line_no, row.node_id), []).append(row)
    # Pieces in different states cannot be one row; nor can two open ones: the code before 0009
    # fulfils and releases a reservation by its shipment, so a merged row would move the units
    # of both shipments when one ships, and the other would find none.
    mixed = {
        key: rows
        for key, rows in groups.items()
        if len({r.status for r in rows}) > 1 or sum(r.status == "active" for r in rows) > 1
    }
    if mixed:
        named = "; ".join(
            f"order {order_id} line {line_no} at {node_id}: "
            + ", ".join(f"{r.shipment_id} {r.status} x{r.quantity}" for r in rows)
            for (order_id, line_no, node_id), rows in sorted(mixed.items())[:20]
        )
        more = f" (and {len(mixed) - 20} more)" if len(mixed) > 20 else ""
        raise PiecesInDifferentStates(
            "cannot downgrade below 0009_reservation_per_shipment: these lines have pieces at"
            " one node in different states, or open in two shipments, which one (order, line,"
            " node) row cannot hold without misstating the ledger; finish or release them"
            f" first: {named}{more}"
        )
    for rows in groups.values():
        first, *others = rows
        connection.execute(
            sa.text("update reservation set quantity = :quantity, updated_at = :at where id = :id"),
            {
                "quantity": sum(r.quantity for r in rows),
                "at": max(r.updated_at for r in rows),
                "id": first.id,
            },
        )
        connection.execute(
            sa.text("delete from reservation where id in :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": [r.id for r in others]},
        )
