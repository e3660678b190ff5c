"""One line divided between nodes, at the allocation service on real SQLite and PostgreSQL: the
pieces are reserved as shipments of their own, an allocation attempted again returns them, a
rejected piece is sourced again alone (the other piece's reservation is not this allocation's),
and a checkout hold that divided the line converts."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import uniform_sla_policy
from ledger import holds
from ledger.db import transaction
from services import allocation
from services.allocation import AllocationRequest
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.ledger_fixtures import position, seed

SLA = uniform_sla_policy(60)


def _request(quantity: int, **fields: object) -> AllocationRequest:
    return AllocationRequest(
        order_id="o-1",
        lines=[OrderLine(line_no=1, sku="TEE", quantity=quantity)],
        destination=GeoPoint(lat=0, lon=0),
        delivery_method=DeliveryMethod.HOME,
        **fields,  # type: ignore[arg-type]
    )


def _pieces(result: allocation.Allocation) -> list[tuple[str, str, int, int]]:
    return sorted(
        (s.shipment_id, s.node_id, ln.line_no, ln.quantity)
        for s in result.shipments
        for ln in s.lines
    )


def test_a_line_no_node_holds_is_reserved_as_one_shipment_per_piece_and_found_again(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})

    first = allocation.allocate(ledger_engine, SLA, _request(678))
    again = allocation.allocate(ledger_engine, SLA, _request(678))

    assert sorted((node, units) for _, node, _, units in _pieces(first)) == [
        ("WH-A", 400),
        ("WH-B", 278),
    ]
    assert {sid for sid, *_ in _pieces(first)} == {"o-1-S1", "o-1-S2"}
    assert "no single node holds 678" in first.explanation
    assert _pieces(again) == _pieces(first) and again.explanation == "allocation already recorded"
    assert [position(ledger_engine, n) for n in ("WH-A", "WH-B")] == [(400, 400, 0), (300, 278, 0)]
    assert_ledger_balances(ledger_engine)


def test_a_rejected_piece_is_sourced_again_without_the_other_piece(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300, "WH-C": 500})
    first = allocation.allocate(ledger_engine, SLA, _request(678))
    at_a = next(s for s in first.shipments if s.node_id == "WH-A")
    allocation.release_reservations(ledger_engine, "o-1", [at_a.shipment_id])

    moved = allocation.allocate(
        ledger_engine,
        SLA,
        _request(at_a.lines[0].quantity, excluded_nodes=["WH-A"], first_shipment_seq=3),
    )

    assert _pieces(moved) == [("o-1-S3", "WH-C", 1, 400)]
    assert [position(ledger_engine, n)[1] for n in ("WH-A", "WH-B", "WH-C")] == [0, 278, 400]
    assert_ledger_balances(ledger_engine)


def test_a_checkout_hold_that_divided_a_line_converts_into_its_pieces(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    with transaction(ledger_engine) as session:
        lines = [
            holds.HoldRequestLine(1, "WH-A", "TEE", 400),
            holds.HoldRequestLine(1, "WH-B", "TEE", 278),
        ]
        holds.place_hold(session, "H-1", "web", lines, datetime.now(UTC) + timedelta(minutes=5))

    result = allocation.allocate(ledger_engine, SLA, _request(678, hold_id="H-1", channel="web"))

    assert "converted checkout hold H-1" in result.explanation
    assert sorted((node, units) for _, node, _, units in _pieces(result)) == [
        ("WH-A", 400),
        ("WH-B", 278),
    ]
    assert [position(ledger_engine, n) for n in ("WH-A", "WH-B")] == [(400, 400, 0), (300, 278, 0)]
    assert_ledger_balances(ledger_engine)
