"""Lateness against promise counts in node health, on real SQLite and PostgreSQL: fulfilling a
shipment that left after its ship-by date records a LATE incident with its units, once however
often it is retried; one that left in time records none; and the node-health rule degrades a
node most of whose recent parcels were late, while the failure figures stay as they were."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.node_health import NodeHealthRule
from domain.node_status import NodeStatus
from ledger import stock
from ledger.db import transaction
from ledger.node_health import records_of_up_nodes
from ledger.tables import NodeIncident
from services import allocation, network
from tests.support.ledger_fixtures import position, seed

RULE = NodeHealthRule(window_seconds=3600, min_incidents=3, max_incident_share=0.5)
TODAY = datetime.now(UTC).date()


def _reserve(engine: Engine, order_id: str, node_id: str) -> str:
    shipment_id = f"{order_id}-S1"
    with transaction(engine) as session:
        stock.reserve(
            session, [stock.ReservationRequest(order_id, shipment_id, 1, node_id, "TEE", 1)]
        )
    return shipment_id


def _ship(engine: Engine, order_id: str, node_id: str, ship_by: date, at: datetime) -> int:
    shipment_id = _reserve(engine, order_id, node_id)
    return allocation.fulfil_reservations(
        engine, order_id, shipment_id, at, node_id=node_id, ship_by=ship_by
    )


def _incidents(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(NodeIncident).order_by(col(NodeIncident.shipment_id))).all()
        return [(r.shipment_id, r.kind, r.reason) for r in rows]


def test_a_shipment_that_left_after_its_ship_by_date_records_a_late_incident_once(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10})
    ship_by = TODAY - timedelta(days=2)
    shipped_at = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)

    units = _ship(ledger_engine, "O1", "A", ship_by, shipped_at)
    retried = allocation.fulfil_reservations(
        ledger_engine, "O1", "O1-S1", shipped_at, node_id="A", ship_by=ship_by
    )

    assert (units, retried) == (1, 0)
    assert position(ledger_engine, "A") == (9, 0, 0)
    assert _incidents(ledger_engine) == [
        ("O1-S1", "late", f"shipped {TODAY}, 2 days after its ship-by date {ship_by}")
    ]


def test_a_shipment_in_time_or_without_a_promise_records_no_incident(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10})
    now = datetime.now(UTC)

    _ship(ledger_engine, "O1", "A", TODAY, now)  # on its ship-by date
    _ship(ledger_engine, "O2", "A", TODAY + timedelta(days=1), now)  # early
    allocation.fulfil_reservations(ledger_engine, "O3", _reserve(ledger_engine, "O3", "A"))
    # No shipped time from the node: now, against a ship-by date already past.
    late_now = _reserve(ledger_engine, "O4", "A")
    allocation.fulfil_reservations(
        ledger_engine, "O4", late_now, node_id="A", ship_by=TODAY - timedelta(days=1)
    )

    assert position(ledger_engine, "A") == (6, 0, 0)
    assert [(s, k) for s, k, _ in _incidents(ledger_engine)] == [("O4-S1", "late")]


def test_the_health_rule_degrades_a_node_that_ships_most_parcels_late(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10, "B": 10})
    now = datetime.now(UTC)
    past = TODAY - timedelta(days=1)
    for n in range(3):  # A: three of four late
        _ship(ledger_engine, f"A{n}", "A", past, now)
    _ship(ledger_engine, "A3", "A", TODAY, now)
    for n in range(3):  # B: three of seven late, below half
        _ship(ledger_engine, f"B{n}", "B", past, now)
    for n in range(3, 7):
        _ship(ledger_engine, f"B{n}", "B", TODAY, now)

    with Session(ledger_engine) as session:
        records = {r.node_id: r for r in records_of_up_nodes(session, now - timedelta(hours=1))}
    changes = network.degrade_unhealthy_nodes(ledger_engine, RULE, datetime.now(UTC))

    assert (records["A"].shipments, records["A"].late, records["A"].incidents) == (4, 3, 0)
    assert (records["B"].shipments, records["B"].late) == (7, 3)
    assert [(c.node_id, c.status, c.reallocate_unpicked) for c in changes] == [
        ("A", NodeStatus.DEGRADED, True)
    ]
    assert "3 of its last 4 shipments left after their ship-by date" in changes[0].reason
