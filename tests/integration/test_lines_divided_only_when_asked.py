"""A line is divided between nodes only when the workflow asks (AllocateInput.divide_lines): an
order started before ORDER_DIVIDED_LINES_2026_12 handles its lines by line number, so the
allocation activity sources each of its lines whole or not at all. Real SQLite and PostgreSQL."""

from sqlalchemy import Engine

from activities.ledger import LedgerActivities
from contracts.activities import AllocateInput
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import default_sla_policy
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.ledger_fixtures import position, seed


def _input(**fields: object) -> AllocateInput:
    return AllocateInput(
        order_id="o-1",
        lines=[
            OrderLine(line_no=1, sku="TEE", quantity=678),  # no node holds 678
            OrderLine(line_no=2, sku="TEE", quantity=1),
        ],
        destination=GeoPoint(lat=0, lon=0),
        delivery_method=DeliveryMethod.HOME,
        **fields,  # type: ignore[arg-type]
    )


def test_an_allocation_not_asked_to_divide_lines_leaves_a_line_no_node_holds_unfilled(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    ledger = LedgerActivities(ledger_engine, default_sla_policy())

    result = ledger.allocate_stock(_input(partial=True))

    assert [(ln.line_no, ln.quantity) for ln in result.unfilled_lines] == [(1, 678)]
    assert [(ln.line_no, ln.quantity) for s in result.shipments for ln in s.lines] == [(2, 1)]
    assert sum(position(ledger_engine, n)[1] for n in ("WH-A", "WH-B")) == 1
    assert_ledger_balances(ledger_engine)


def test_an_allocation_not_asked_to_divide_lines_backorders_a_whole_order_it_cannot_fill(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    ledger = LedgerActivities(ledger_engine, default_sla_policy())

    result = ledger.allocate_stock(_input())

    assert result.backordered and result.shipments == []
    assert [position(ledger_engine, n)[1] for n in ("WH-A", "WH-B")] == [0, 0]


def test_an_allocation_asked_to_divide_lines_reserves_the_line_in_pieces(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    ledger = LedgerActivities(ledger_engine, default_sla_policy())

    result = ledger.allocate_stock(_input(divide_lines=True))

    assert not result.backordered and result.unfilled_lines == []
    pieces = [ln.quantity for s in result.shipments for ln in s.lines if ln.line_no == 1]
    assert len(pieces) == 2 and sum(pieces) == 678
    assert_ledger_balances(ledger_engine)
