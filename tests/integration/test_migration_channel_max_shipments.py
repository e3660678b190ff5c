"""Migration 0010 on real SQLite and PostgreSQL: a 0009 database upgrades with its channels
limiting nothing (no maximum shipments per order), takes a limit, and downgrades again."""

from alembic import command
from sqlalchemy import inspect, text

from ledger import migrations
from ledger.db import create_schema, transaction
from ledger.tables import Channel
from tests.integration.test_migrations import fresh, version  # noqa: F401  (the fixture)

BEFORE = "0009_reservation_per_shipment"


def test_a_0009_database_upgrades_with_its_channels_limiting_no_shipments(
    fresh,  # noqa: F811
) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, BEFORE)
        # Raw SQL: the table's model already has the column this revision adds.
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy,"
                " ship_complete_wait_seconds, ship_complete_then, allow_preorders,"
                " inventory_aware, active, consolidation_window_seconds, updated_at) values"
                " ('b2b', 'B2B', 'b2b', 'ship_partial', 259200.0, 'ask', false, false, true,"
                " 0.0, '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        channel = session.get(Channel, "b2b")
        assert channel is not None and channel.max_shipments_per_order is None
        channel.max_shipments_per_order = 2
    with transaction(engine) as session:
        assert session.get(Channel, "b2b").max_shipments_per_order == 2


def test_the_downgrade_drops_the_limit_and_keeps_the_channel(fresh) -> None:  # noqa: F811
    engine = fresh.engine()
    create_schema(engine)
    with transaction(engine) as session:
        session.add(
            Channel(channel="b2b", name="B2B", channel_type="b2b", max_shipments_per_order=1)
        )

    with engine.begin() as connection:
        command.downgrade(migrations.config(connection), BEFORE)

    assert version(engine) == BEFORE
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("channel")}
        assert "max_shipments_per_order" not in columns
        assert connection.execute(text("select name from channel")).scalars().all() == ["B2B"]
