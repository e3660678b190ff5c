"""Migration 0009's downgrade on real SQLite and PostgreSQL: a line's closed pieces at one node
in the same state become one row with their units summed, so the old (order, line, node) key can
come back; pieces in different states (one shipped, one still reserved), or open in two shipments
(the old code fulfils by shipment), make it refuse, naming them, and the database stays as it
was."""

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from ledger import migrations
from ledger.db import create_schema, transaction
from ledger.tables import Reservation
from tests.integration.test_migration_reservation_per_shipment import ROWS
from tests.integration.test_migrations import fresh, version  # noqa: F401  (the fixture)

BEFORE = "0008_parcel_groups"


def _at_head_with(engine: Engine, pieces: list[tuple[str, str, str, int]]) -> None:
    """(order, shipment, status, units) of line 1 at N1."""
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(text(ROWS[0]))
    with transaction(engine) as session:
        for order_id, shipment_id, status, units in pieces:
            session.add(
                Reservation(order_id=order_id, line_no=1, node_id="N1", sku="TEE",
                            quantity=units, shipment_id=shipment_id, status=status)
            )  # fmt: skip


def _downgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        command.downgrade(migrations.config(connection), BEFORE)


def _rows(engine: Engine) -> list[tuple[str, str, str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "select order_id, shipment_id, status, quantity from reservation"
                " order by order_id, shipment_id"
            )
        )
        return [tuple(r) for r in rows]


def test_pieces_of_a_line_at_one_node_in_one_state_are_merged_and_the_old_key_comes_back(
    fresh,  # noqa: F811
) -> None:
    engine = fresh.engine()
    _at_head_with(
        engine,
        [
            ("o", "o-S1", "fulfilled", 400),
            ("o", "o-S3", "fulfilled", 78),
            ("p", "p-S1", "active", 5),
            ("q", "q-S1", "released", 2),
            ("q", "q-S2", "released", 4),
        ],
    )

    _downgrade(engine)

    assert version(engine) == BEFORE
    assert _rows(engine) == [
        ("o", "o-S1", "fulfilled", 478),
        ("p", "p-S1", "active", 5),
        ("q", "q-S1", "released", 6),
    ]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "insert into reservation (order_id, line_no, node_id, sku, quantity,"
                " shipment_id, status, updated_at) values"
                " ('p', 1, 'N1', 'TEE', 1, 'p-S9', 'active', '2026-12-01 09:00:00')"
            )
        )


def test_pieces_in_different_states_make_the_downgrade_refuse_naming_them(
    fresh,  # noqa: F811
) -> None:
    engine = fresh.engine()
    _at_head_with(engine, [("o", "o-S1", "fulfilled", 400), ("o", "o-S3", "active", 78)])

    with pytest.raises(RuntimeError, match=r"order o line 1 at N1: o-S1 fulfilled x400, o-S3"):
        _downgrade(engine)

    assert version(engine) == migrations.head()
    assert _rows(engine) == [("o", "o-S1", "fulfilled", 400), ("o", "o-S3", "active", 78)]


def test_two_open_pieces_of_a_line_at_one_node_make_the_downgrade_refuse_naming_them(
    fresh,  # noqa: F811
) -> None:
    """Merged, they would be one row the old code fulfils for either shipment: refused."""
    engine = fresh.engine()
    _at_head_with(engine, [("p", "p-S1", "active", 5), ("p", "p-S2", "active", 3)])

    with pytest.raises(RuntimeError, match=r"order p line 1 at N1: p-S1 active x5, p-S2 active"):
        _downgrade(engine)

    assert version(engine) == migrations.head()
    assert _rows(engine) == [("p", "p-S1", "active", 5), ("p", "p-S2", "active", 3)]
