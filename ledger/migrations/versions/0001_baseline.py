"""Baseline: the schema SQLModel.metadata.create_all made before migrations (ledger/tables.py
as of issue 11). A database made that way is adopted by running this revision on it
(ledger.db.create_schema): it creates only the tables such a database lacks, so tables an older
OpenDOM already made are left as they are, rows included.

Revision ID: 0001
Revises:
Create Date: 2026-12-01 11:53:30.347711
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create_table(existing: set[str], name: str, *columns: sa.schema.SchemaItem) -> None:
    if name not in existing:
        op.create_table(name, *columns)


def _create_index(existing: set[str], index: str, table: str, *args: object, **kw: object) -> None:
    if table not in existing:
        op.create_index(index, table, *args, **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    _create_table(
        existing,
        "apiclient",
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("signing_secret", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    _create_table(
        existing,
        "availabilityevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_index(
        existing,
        op.f("ix_availabilityevent_channel"),
        "availabilityevent",
        ["channel"],
        unique=False,
    )

    _create_table(
        existing,
        "availabilitystate",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("in_stock", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sku"),
    )
    _create_table(
        existing,
        "callbacksignature",
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )
    _create_index(
        existing,
        op.f("ix_callbacksignature_received_at"),
        "callbacksignature",
        ["received_at"],
        unique=False,
    )

    _create_table(
        existing,
        "channelpool",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("node_types", sa.JSON(), nullable=True),
        sa.Column("node_ids", sa.JSON(), nullable=True),
        sa.Column("share_by_node_type", sa.JSON(), nullable=True),
        sa.Column("cap_by_node_type", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("channel"),
    )
    _create_table(
        existing,
        "checkouthold",
        sa.Column("hold_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hold_id"),
    )
    _create_index(
        existing, op.f("ix_checkouthold_expires_at"), "checkouthold", ["expires_at"], unique=False
    )
    _create_index(
        existing, op.f("ix_checkouthold_status"), "checkouthold", ["status"], unique=False
    )

    _create_table(
        existing,
        "feedevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("applied_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "event_id"),
    )
    _create_table(
        existing,
        "feedsource",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    _create_table(
        existing,
        "node",
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("node_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("can_ship", sa.Boolean(), nullable=False),
        sa.Column("can_pickup", sa.Boolean(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("system_url", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("accept_sla_seconds", sa.Float(), nullable=True),
        sa.Column("pick_sla_seconds", sa.Float(), nullable=True),
        sa.Column("ship_sla_seconds", sa.Float(), nullable=True),
        sa.Column("safety_stock", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("node_id"),
    )
    _create_index(existing, op.f("ix_node_node_type"), "node", ["node_type"], unique=False)

    _create_table(
        existing,
        "nodeincident",
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=220), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("shipment_id"),
    )
    _create_index(existing, op.f("ix_nodeincident_at"), "nodeincident", ["at"], unique=False)
    _create_index(
        existing, op.f("ix_nodeincident_node_id"), "nodeincident", ["node_id"], unique=False
    )

    _create_table(
        existing,
        "nodestatuschange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_index(
        existing, op.f("ix_nodestatuschange_at"), "nodestatuschange", ["at"], unique=False
    )
    _create_index(
        existing, op.f("ix_nodestatuschange_node_id"), "nodestatuschange", ["node_id"], unique=False
    )

    _create_table(
        existing,
        "nodetypepolicy",
        sa.Column("node_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node_type"),
    )
    _create_table(
        existing,
        "orderview",
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("order_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    _create_index(existing, op.f("ix_orderview_channel"), "orderview", ["channel"], unique=False)
    _create_index(
        existing, op.f("ix_orderview_created_at"), "orderview", ["created_at"], unique=False
    )
    _create_index(existing, op.f("ix_orderview_status"), "orderview", ["status"], unique=False)

    _create_table(
        existing,
        "sku",
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    _create_table(
        existing,
        "stockmovement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("d_on_hand", sa.Integer(), nullable=False),
        sa.Column("d_reserved", sa.Integer(), nullable=False),
        sa.Column("d_held", sa.Integer(), nullable=False),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _create_index(existing, op.f("ix_stockmovement_at"), "stockmovement", ["at"], unique=False)
    _create_index(
        existing, op.f("ix_stockmovement_node_id"), "stockmovement", ["node_id"], unique=False
    )
    _create_index(existing, op.f("ix_stockmovement_sku"), "stockmovement", ["sku"], unique=False)

    _create_table(
        existing,
        "watermark",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _create_table(
        existing,
        "holdline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["checkouthold.hold_id"],
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["node.node_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hold_id", "line_no", "node_id"),
    )
    _create_index(existing, op.f("ix_holdline_hold_id"), "holdline", ["hold_id"], unique=False)

    _create_table(
        existing,
        "reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=220), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["node.node_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "line_no", "node_id"),
    )
    _create_index(
        existing, op.f("ix_reservation_order_id"), "reservation", ["order_id"], unique=False
    )
    _create_index(existing, op.f("ix_reservation_status"), "reservation", ["status"], unique=False)

    _create_table(
        existing,
        "stockposition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("safety_override", sa.Integer(), nullable=True),
        sa.Column("snapshot_as_of", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["node.node_id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["sku.sku"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "sku"),
    )
    _create_index(
        existing, op.f("ix_stockposition_node_id"), "stockposition", ["node_id"], unique=False
    )
    _create_index(existing, op.f("ix_stockposition_sku"), "stockposition", ["sku"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stockposition_sku"), table_name="stockposition")
    op.drop_index(op.f("ix_stockposition_node_id"), table_name="stockposition")

    op.drop_table("stockposition")
    op.drop_index(op.f("ix_reservation_status"), table_name="reservation")
    op.drop_index(op.f("ix_reservation_order_id"), table_name="reservation")

    op.drop_table("reservation")
    op.drop_index(op.f("ix_holdline_hold_id"), table_name="holdline")

    op.drop_table("holdline")
    op.drop_table("watermark")
    op.drop_index(op.f("ix_stockmovement_sku"), table_name="stockmovement")
    op.drop_index(op.f("ix_stockmovement_node_id"), table_name="stockmovement")
    op.drop_index(op.f("ix_stockmovement_at"), table_name="stockmovement")

    op.drop_table("stockmovement")
    op.drop_table("sku")
    op.drop_index(op.f("ix_orderview_status"), table_name="orderview")
    op.drop_index(op.f("ix_orderview_created_at"), table_name="orderview")
    op.drop_index(op.f("ix_orderview_channel"), table_name="orderview")

    op.drop_table("orderview")
    op.drop_table("nodetypepolicy")
    op.drop_index(op.f("ix_nodestatuschange_node_id"), table_name="nodestatuschange")
    op.drop_index(op.f("ix_nodestatuschange_at"), table_name="nodestatuschange")

    op.drop_table("nodestatuschange")
    op.drop_index(op.f("ix_nodeincident_node_id"), table_name="nodeincident")
    op.drop_index(op.f("ix_nodeincident_at"), table_name="nodeincident")

    op.drop_table("nodeincident")
    op.drop_index(op.f("ix_node_node_type"), table_name="node")

    op.drop_table("node")
    op.drop_table("feedsource")
    op.drop_table("feedevent")
    op.drop_index(op.f("ix_checkouthold_status"), table_name="checkouthold")
    op.drop_index(op.f("ix_checkouthold_expires_at"), table_name="checkouthold")

    op.drop_table("checkouthold")
    op.drop_table("channelpool")
    op.drop_index(op.f("ix_callbacksignature_received_at"), table_name="callbacksignature")

    op.drop_table("callbacksignature")
    op.drop_table("availabilitystate")
    op.drop_index(op.f("ix_availabilityevent_channel"), table_name="availabilityevent")

    op.drop_table("availabilityevent")
    op.drop_table("apiclient")
