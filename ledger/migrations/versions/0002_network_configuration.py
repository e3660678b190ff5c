"""Network configuration: a node's calendar, address, system and enabled flag; catalogue
attributes; channels; carrier services; the configuration audit trail; API key lifecycle.

New non-null columns get a server default, so rows written before the upgrade read back with
the values the models default to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 12:29:02.043163
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns are added with plain ADD COLUMN, not batch mode: SQLite would rebuild the table,
# which its foreign keys (stock positions on nodes and SKUs) refuse. A constant default:
# SQLite cannot ADD COLUMN with a non-constant default such as CURRENT_TIMESTAMP.
UPGRADED_AT = sa.text("'2026-12-01 00:00:00'")


def upgrade() -> None:
    op.create_table(
        "carrierservice",
        sa.Column("carrier", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("transit_bands", sa.JSON(), nullable=False),
        sa.Column("cutoff_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("carrier", "service"),
    )
    op.create_table(
        "channel",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ruleset", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("default_scenario", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("fulfilment_policy", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )
    op.create_table(
        "configchange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("entity_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("configchange", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_configchange_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_configchange_entity"), ["entity"], unique=False)
        batch_op.create_index(batch_op.f("ix_configchange_entity_id"), ["entity_id"], unique=False)

    op.add_column(
        "apiclient",
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    )
    op.add_column(
        "apiclient", sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
    )
    op.add_column(
        "apiclient",
        sa.Column("secret_rotated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )

    op.add_column(
        "feedsource",
        sa.Column(
            "kind",
            sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=False,
            server_default="stock",
        ),
    )

    op.add_column(
        "node",
        sa.Column(
            "connector_kind",
            sqlmodel.sql.sqltypes.AutoString(length=40),
            nullable=False,
            server_default="opendom-http",
        ),
    )
    op.add_column(
        "node",
        sa.Column("credential_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )
    op.add_column(
        "node", sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column(
        "node",
        sa.Column("can_ship_to_store", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "node", sa.Column("address_line1", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )
    op.add_column("node", sa.Column("city", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column(
        "node", sa.Column("postal_code", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
    )
    op.add_column(
        "node", sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True)
    )
    op.add_column(
        "node",
        sa.Column(
            "working_days",
            sa.JSON(),
            nullable=False,
            server_default=sa.text("'[0, 1, 2, 3, 4]'"),
        ),
    )
    op.add_column(
        "node", sa.Column("holidays", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column(
        "node",
        sa.Column(
            "cutoff_time",
            sqlmodel.sql.sqltypes.AutoString(length=5),
            nullable=False,
            server_default="14:00",
        ),
    )
    op.add_column(
        "node",
        sa.Column(
            "timezone",
            sqlmodel.sql.sqltypes.AutoString(length=64),
            nullable=False,
            server_default="UTC",
        ),
    )
    op.add_column(
        "node", sa.Column("processing_days", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "node",
        sa.Column(
            "updated_at",
            sqlmodel.sql.sqltypes.UTCDateTime(),
            nullable=False,
            server_default=UPGRADED_AT,
        ),
    )

    op.add_column(
        "sku", sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )
    op.add_column("sku", sa.Column("weight_kg", sa.Float(), nullable=True))
    op.add_column("sku", sa.Column("length_cm", sa.Float(), nullable=True))
    op.add_column("sku", sa.Column("width_cm", sa.Float(), nullable=True))
    op.add_column("sku", sa.Column("height_cm", sa.Float(), nullable=True))
    op.add_column(
        "sku", sa.Column("ship_alone", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "sku", sa.Column("oversize", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "sku", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column(
        "sku",
        sa.Column(
            "updated_at",
            sqlmodel.sql.sqltypes.UTCDateTime(),
            nullable=False,
            server_default=UPGRADED_AT,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("sku", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("active")
        batch_op.drop_column("oversize")
        batch_op.drop_column("ship_alone")
        batch_op.drop_column("height_cm")
        batch_op.drop_column("width_cm")
        batch_op.drop_column("length_cm")
        batch_op.drop_column("weight_kg")
        batch_op.drop_column("description")

    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("processing_days")
        batch_op.drop_column("timezone")
        batch_op.drop_column("cutoff_time")
        batch_op.drop_column("holidays")
        batch_op.drop_column("working_days")
        batch_op.drop_column("country")
        batch_op.drop_column("postal_code")
        batch_op.drop_column("city")
        batch_op.drop_column("address_line1")
        batch_op.drop_column("can_ship_to_store")
        batch_op.drop_column("enabled")
        batch_op.drop_column("credential_ref")
        batch_op.drop_column("connector_kind")

    with op.batch_alter_table("feedsource", schema=None) as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("apiclient", schema=None) as batch_op:
        batch_op.drop_column("secret_rotated_at")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("created_by")

    with op.batch_alter_table("configchange", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_configchange_entity_id"))
        batch_op.drop_index(batch_op.f("ix_configchange_entity"))
        batch_op.drop_index(batch_op.f("ix_configchange_at"))

    op.drop_table("configchange")
    op.drop_table("channel")
    op.drop_table("carrierservice")
