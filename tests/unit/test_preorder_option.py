"""The checkout's pre-order option (sourcing.preorder): the first date the incoming stock covers
the cart after the units the waiting orders still want, plus the node's processing and the
carrier's transit, as every other promise is dated."""

from datetime import UTC, date, datetime

from domain.incoming import IncomingUnits
from sourcing.model import NodeProfile, ProcessingCalendar, TransitTable
from sourcing.preorder import IncomingAt, left_after_waiting, preorder_option
from sourcing.promise import add_carrier_days, ship_date
from tests.support.candidates import HOME, lines, node

TUESDAY_10 = datetime(2026, 12, 1, 10, tzinfo=UTC)
TODAY = TUESDAY_10.date()
TRANSIT = TransitTable()


def profiles(*nodes, calendar: ProcessingCalendar | None = None) -> list[NodeProfile]:
    made = [NodeProfile.of(n) for n in nodes]
    if calendar is not None:
        made = [p.model_copy(update={"calendar": calendar}) for p in made]
    return made


def test_the_date_is_the_receipt_then_the_next_working_day_then_transit() -> None:
    # 100 km: ground, one carrier day. Goods due Thursday 3rd land after its work: shipped
    # Friday 4th, delivered Monday 7th.
    nodes = profiles(node("WH", 100, {}))
    incoming = [IncomingAt("WH", "TEE", date(2026, 12, 3), 10)]

    option = preorder_option(lines(("TEE", 2)), HOME, nodes, incoming, {}, TUESDAY_10, TRANSIT)

    assert option is not None and option.code == "preorder"
    (shipment,) = option.shipments
    assert (shipment.node_id, shipment.service) == ("WH", "ground")
    assert shipment.ship_by == date(2026, 12, 4)
    assert option.promised_date == shipment.promised_date == date(2026, 12, 7)


def test_units_the_waiting_orders_want_are_not_quoted_again() -> None:
    nodes = profiles(node("WH", 100, {}))
    incoming = [
        IncomingAt("WH", "TEE", date(2026, 12, 3), 5),
        IncomingAt("WH", "TEE", date(2026, 12, 10), 5),
    ]

    nobody_waits = preorder_option(
        lines(("TEE", 5)), HOME, nodes, incoming, {}, TUESDAY_10, TRANSIT
    )
    five_wait = preorder_option(
        lines(("TEE", 5)), HOME, nodes, incoming, {"TEE": 5}, TUESDAY_10, TRANSIT
    )
    eight_wait = preorder_option(
        lines(("TEE", 5)), HOME, nodes, incoming, {"TEE": 8}, TUESDAY_10, TRANSIT
    )

    assert nobody_waits is not None and nobody_waits.shipments[0].ship_by == date(2026, 12, 4)
    # The first purchase order goes to the orders already waiting: the cart takes the second.
    assert five_wait is not None and five_wait.shipments[0].ship_by == date(2026, 12, 11)
    assert eight_wait is None  # 2 left of 10 coming: never covered


def test_the_waiting_orders_take_stock_now_first_then_the_earliest_incoming() -> None:
    now_left, coming = left_after_waiting(
        "TEE",
        {"A": 3, "B": 0},
        [
            IncomingAt("B", "TEE", date(2026, 12, 2), 4),
            IncomingAt("A", "TEE", date(2026, 12, 9), 4),
            IncomingAt("A", "MUG", date(2026, 12, 2), 9),
        ],
        5,
        TODAY,
    )

    assert now_left == {}
    assert coming == {
        "B": [IncomingUnits(date=date(2026, 12, 2), units=2)],
        "A": [IncomingUnits(date=date(2026, 12, 9), units=4)],
    }


def test_a_late_line_counts_from_today() -> None:
    nodes = profiles(node("WH", 100, {}))
    late = [IncomingAt("WH", "TEE", date(2026, 11, 20), 3)]

    option = preorder_option(lines(("TEE", 3)), HOME, nodes, late, {}, TUESDAY_10, TRANSIT)

    # Counted as on hand today: no pre-order (the stock options say what can go now).
    assert option is None


def test_each_sku_comes_from_the_node_where_it_arrives_first_and_the_date_is_the_latest() -> None:
    nodes = profiles(node("NEAR", 50, {"MUG": 2}), node("FAR", 900, {}))
    incoming = [
        IncomingAt("NEAR", "TEE", date(2026, 12, 14), 10),
        IncomingAt("FAR", "TEE", date(2026, 12, 2), 10),
    ]

    option = preorder_option(
        lines(("TEE", 4), ("MUG", 1)), HOME, nodes, incoming, {}, TUESDAY_10, TRANSIT
    )

    assert option is not None
    by_node = {s.node_id: s for s in option.shipments}
    assert [ln.sku for ln in by_node["NEAR"].lines] == ["MUG"]
    assert [ln.sku for ln in by_node["FAR"].lines] == ["TEE"]
    # FAR: landed the 2nd, shipped the 3rd, 900 km by express (beyond 800 km): the 4th.
    assert (by_node["FAR"].ship_by, by_node["FAR"].service) == (date(2026, 12, 3), "express")
    assert by_node["NEAR"].ship_by == date(2026, 12, 1)  # on hand now, before the cut-off
    assert option.promised_date == by_node["FAR"].promised_date == date(2026, 12, 4)


def test_the_nodes_calendar_and_processing_days_date_the_shipment() -> None:
    calendar = ProcessingCalendar(cutoff_hour=12, working_days=[0, 1, 2, 3], processing_days=1)
    nodes = profiles(node("WH", 100, {}), calendar=calendar)
    incoming = [IncomingAt("WH", "TEE", date(2026, 12, 3), 1)]  # a Thursday

    option = preorder_option(lines(("TEE", 1)), HOME, nodes, incoming, {}, TUESDAY_10, TRANSIT)

    # Work on them starts the next day, Friday, not a working day: Monday, then a processing day.
    next_day = datetime(2026, 12, 4, 0, tzinfo=UTC)
    assert option is not None
    assert option.shipments[0].ship_by == ship_date(next_day, calendar) == date(2026, 12, 8)
    assert option.promised_date == add_carrier_days(date(2026, 12, 8), 1)


def test_no_option_at_a_node_that_cannot_ship() -> None:
    nodes = profiles(node("STORE", 10, {}, can_ship=False))
    incoming = [IncomingAt("STORE", "TEE", date(2026, 12, 3), 10)]

    assert (
        preorder_option(lines(("TEE", 1)), HOME, nodes, incoming, {}, TUESDAY_10, TRANSIT) is None
    )
