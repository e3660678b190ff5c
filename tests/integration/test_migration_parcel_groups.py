"""Migration 0008 (issue 14, item 6) on real SQLite and PostgreSQL: a 0007 database upgrades with
its channels grouping nothing (a window of 0) and empty parcel tables that take a group."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from ledger import migrations
from ledger.db import create_schema, transaction
from ledger.tables import Channel, ParcelGroup, ParcelMember
from tests.integration.test_migrations import fresh, version  # noqa: F401  (the fixture)


def test_a_0007_database_upgrades_with_its_channels_grouping_nothing_and_no_parcels(
    fresh,  # noqa: F811
) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0007_channel_preorders")
        # Raw SQL: the table's model already has the column this revision adds.
        connection.execute(
            text(
                "insert into channel (channel, name, channel_type, fulfilment_policy,"
                " ship_complete_wait_seconds, ship_complete_then, allow_preorders,"
                " inventory_aware, active, updated_at) values ('web', 'Web', 'dtc',"
                " 'ship_partial', 259200.0, 'ask', false, false, true, '2026-11-30 08:00:00')"
            )
        )

    create_schema(engine)

    assert version(engine) == migrations.head()
    now = datetime.now(UTC)
    with transaction(engine) as session:
        channel = session.get(Channel, "web")
        assert channel is not None and channel.consolidation_window_seconds == 0.0
        channel.consolidation_window_seconds = 1800.0
        session.add(
            ParcelGroup(
                parcel_id="P-1",
                channel="web",
                customer_id="C-1",
                address_key="FR|69002|lyon|1 place bellecour",
                node_id="n1",
                opened_at=now,
                closes_at=now + timedelta(seconds=1800),
            )
        )
        session.flush()
        session.add(
            ParcelMember(shipment_id="order-web-1-S1", parcel_id="P-1", order_id="o", units=2)
        )
    with transaction(engine) as session:
        assert session.get(Channel, "web").consolidation_window_seconds == 1800.0
        assert session.get(ParcelMember, "order-web-1-S1").status == "active"
