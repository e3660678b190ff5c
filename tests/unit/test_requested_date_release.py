"""A requested "not before" date: reserved now, promised on that date, released on the day its
planned transit needs (services.allocation.hold_until_release_day)."""

from datetime import UTC, date, datetime

from domain.orders import OrderLine
from domain.sla import NodeSla
from services.allocation import Allocation, ReservedShipment, hold_until_release_day

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SLA = NodeSla(accept_seconds=60, pick_seconds=60, ship_seconds=60)


def _allocation(ship_by: date, promised: date) -> Allocation:
    shipment = ReservedShipment(
        shipment_id="order-b2b-1-S1",
        node_id="WH-RENO",
        node_type="warehouse",
        lines=[OrderLine(line_no=1, sku="TEE", quantity=600)],
        distance_km=12.0,
        sla=SLA,
        ship_by=ship_by,
        promised_date=promised,
    )
    return Allocation(explanation="nearest", shipments=[shipment], promised_date=promised)


def test_a_shipment_due_before_not_before_has_its_whole_plan_moved_by_the_days_it_is_early() -> (
    None
):
    # Planned: handed over today, delivered in 2 days. Wanted from the 11th: 8 days early, so
    # released 8 days from now (noon on the 9th, before the cut-off as today), handed over then.
    held = hold_until_release_day(
        _allocation(date(2026, 12, 1), date(2026, 12, 3)), date(2026, 12, 11), NOW
    )
    [shipment] = held.shipments
    assert shipment.promised_date == date(2026, 12, 11)
    assert shipment.ship_by == date(2026, 12, 9)
    assert shipment.release_after_seconds == 8 * 86400
    assert held.promised_date == date(2026, 12, 11)
    assert "held for the requested date" in held.explanation


def test_the_release_timer_counts_in_the_workers_day_length() -> None:
    held = hold_until_release_day(
        _allocation(date(2026, 12, 1), date(2026, 12, 3)), date(2026, 12, 11), NOW, day_seconds=4
    )
    assert held.shipments[0].release_after_seconds == 32.0  # 8 days of 4 s


def test_a_shipment_that_arrives_on_or_after_not_before_is_released_at_once() -> None:
    planned = _allocation(date(2026, 12, 1), date(2026, 12, 3))
    held = hold_until_release_day(planned, date(2026, 12, 3), NOW)
    assert held.shipments[0].release_after_seconds is None
    assert held.shipments[0].promised_date == date(2026, 12, 3)


def test_a_one_day_transit_wanted_the_day_after_tomorrow_is_released_tomorrow() -> None:
    planned = _allocation(date(2026, 12, 1), date(2026, 12, 2))
    held = hold_until_release_day(planned, date(2026, 12, 3), NOW)
    [shipment] = held.shipments
    assert (shipment.ship_by, shipment.promised_date) == (date(2026, 12, 2), date(2026, 12, 3))
    assert shipment.release_after_seconds == 86400  # a day early: released this time tomorrow


def test_a_node_with_a_processing_day_keeps_it_before_the_moved_ship_by_date() -> None:
    # Planned: released today, processed a day, handed over tomorrow, delivered the day after.
    planned = _allocation(date(2026, 12, 2), date(2026, 12, 3))
    held = hold_until_release_day(planned, date(2026, 12, 10), NOW)
    [shipment] = held.shipments
    # 7 days early: released on the 8th, handed over the 9th, delivered the 10th.
    assert shipment.release_after_seconds == 7 * 86400
    assert (shipment.ship_by, shipment.promised_date) == (date(2026, 12, 9), date(2026, 12, 10))
