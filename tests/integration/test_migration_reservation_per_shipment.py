"""Migration 0009 (issue 14, item 1) on real SQLite and PostgreSQL: a 0008 database upgrades with
its reservations kept, and one line may then hold a row per piece at one node (a piece shipped,
another sourced there again), while one shipment still cannot reserve a line twice."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ledger import migrations
from ledger.db import create_schema, transaction
from ledger.tables import Reservation
from tests.integration.test_migrations import fresh, version  # noqa: F401  (the fixture)

ROWS = [
    "insert into node (node_id, name, node_type, lat, lon, can_ship, can_pickup, daily_capacity,"
    " priority, active, status, system_url) values"
    " ('N1', 'Reno', 'warehouse', 39.5, -119.8, true, false, 500, 50, true, 'up', 'http://wms')",
    "insert into reservation (order_id, line_no, node_id, sku, quantity, shipment_id, status,"
    " updated_at) values ('o', 1, 'N1', 'TEE', 400, 'o-S1', 'fulfilled', '2026-11-30 09:30:00')",
]


def test_a_0008_database_upgrades_and_a_line_may_then_come_back_to_a_node_as_a_new_shipment(
    fresh,  # noqa: F811
) -> None:
    engine = fresh.engine()
    with engine.begin() as connection:
        migrations.upgrade(connection, "0008_parcel_groups")
        for statement in ROWS:
            connection.execute(text(statement))

    create_schema(engine)

    assert version(engine) == migrations.head()
    with transaction(engine) as session:
        session.add(
            Reservation(order_id="o", line_no=1, node_id="N1", sku="TEE", quantity=78,
                        shipment_id="o-S3")
        )  # fmt: skip
    with transaction(engine) as session:
        rows = session.exec(select(Reservation).order_by(col(Reservation.shipment_id))).all()
        assert [(r.shipment_id, r.quantity, r.status) for r in rows] == [
            ("o-S1", 400, "fulfilled"),
            ("o-S3", 78, "active"),
        ]
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(
            Reservation(order_id="o", line_no=1, node_id="N1", sku="TEE", quantity=1,
                        shipment_id="o-S3")
        )  # fmt: skip
