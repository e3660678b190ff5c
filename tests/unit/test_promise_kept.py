"""The promise-kept arithmetic: shipped by the ship-by date and delivered by the promised date,
in UTC, over the window's shipments, per channel and per node."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from domain.orders import ShipmentStatus
from domain.promise_kept import (
    PromiseWindow,
    ShipmentOutcome,
    days_late,
    promise_kept,
)

SHIP_BY = date(2026, 12, 1)
PROMISED = date(2026, 12, 3)
AS_OF = date(2026, 12, 10)


def outcome(
    n: int,
    channel: str = "web",
    node: str = "DC-1",
    shipped_days: int | None = 0,
    delivered_days: int | None = None,
    status: ShipmentStatus | None = None,
    ship_by: date | None = SHIP_BY,
) -> ShipmentOutcome:
    """A shipment due SHIP_BY / PROMISED, shipped (delivered) at noon UTC that many days after
    its date (None: not yet)."""
    shipped = _noon(SHIP_BY, shipped_days)
    delivered = _noon(PROMISED, delivered_days)
    if status is None:
        status = (
            ShipmentStatus.DELIVERED
            if delivered
            else ShipmentStatus.SHIPPED
            if shipped
            else ShipmentStatus.RELEASED
        )
    return ShipmentOutcome(
        order_id=f"o-{n}",
        shipment_id=f"o-{n}-S1",
        channel=channel,
        node_id=node,
        ship_by=ship_by,
        promised_date=PROMISED,
        status=status,
        shipped_at=shipped,
        delivered_at=delivered,
    )


def _noon(day: date, days_after: int | None) -> datetime | None:
    if days_after is None:
        return None
    return datetime.combine(day, time(12), tzinfo=UTC) + timedelta(days=days_after)


def test_shares_count_shipped_by_ship_by_and_delivered_by_promised_date() -> None:
    outcomes = [
        outcome(1, shipped_days=0, delivered_days=0),  # both kept
        outcome(2, shipped_days=-1, delivered_days=-1),  # early: kept
        outcome(3, shipped_days=2, delivered_days=3),  # 2 days late out, 3 days late in
        outcome(4, shipped_days=4, delivered_days=1),  # 4 late out, 1 late in
        outcome(5, shipped_days=0),  # shipped on time, not delivered yet
    ]
    figures = promise_kept(outcomes, PromiseWindow(), AS_OF).overall

    assert (figures.shipments, figures.shipped, figures.shipped_on_time) == (5, 5, 3)
    assert figures.shipped_late == 2 and figures.shipped_on_time_share == 3 / 5
    assert figures.average_days_late_shipping == (2 + 4) / 2
    assert (figures.delivered, figures.delivered_on_time, figures.delivered_late) == (4, 2, 2)
    assert figures.delivered_on_time_share == 2 / 4
    assert figures.average_days_late_delivery == (3 + 1) / 2
    assert figures.overdue == 0


def test_figures_split_by_channel_and_by_node() -> None:
    outcomes = [
        outcome(1, channel="web", node="DC-1", shipped_days=0),
        outcome(2, channel="web", node="ST-2", shipped_days=1),
        outcome(3, channel="store", node="ST-2", shipped_days=3),
        outcome(4, channel="store", node="DC-1", shipped_days=-2),
    ]
    kept = promise_kept(outcomes, PromiseWindow(), AS_OF)

    assert {c: f.shipped_on_time_share for c, f in kept.by_channel.items()} == {
        "web": 0.5,
        "store": 0.5,
    }
    assert {n: f.shipped_on_time for n, f in kept.by_node.items()} == {"DC-1": 2, "ST-2": 0}
    assert kept.by_node["ST-2"].average_days_late_shipping == 2.0
    assert kept.overall.shipped == 4


def test_the_window_filters_by_ship_by_date_channel_and_node() -> None:
    outcomes = [
        outcome(1, ship_by=date(2026, 11, 30)),  # before the window
        outcome(2, ship_by=date(2026, 12, 1)),
        outcome(3, ship_by=date(2026, 12, 5)),
        outcome(4, ship_by=date(2026, 12, 6)),  # after it
        outcome(5, ship_by=date(2026, 12, 2), channel="store"),
        outcome(6, ship_by=date(2026, 12, 2), node="ST-9"),
    ]
    window = PromiseWindow(since=date(2026, 12, 1), until=date(2026, 12, 5))

    assert promise_kept(outcomes, window, AS_OF).overall.shipments == 4
    only_web = PromiseWindow(since=date(2026, 12, 1), until=date(2026, 12, 5), channel="web")
    assert promise_kept(outcomes, only_web, AS_OF).overall.shipments == 3
    only_node = PromiseWindow(since=date(2026, 12, 1), node_id="ST-9")
    assert promise_kept(outcomes, only_node, AS_OF).overall.shipments == 1


def test_an_unshipped_shipment_past_its_ship_by_date_is_overdue_not_shipped() -> None:
    outcomes = [
        outcome(1, shipped_days=None),  # due Dec 1, still at the node on Dec 10
        outcome(2, shipped_days=None, ship_by=AS_OF),  # due today: not yet late
    ]
    figures = promise_kept(outcomes, PromiseWindow(), AS_OF).overall

    assert (figures.shipments, figures.shipped, figures.overdue) == (2, 0, 1)
    assert figures.shipped_on_time_share is None and figures.average_days_late_shipping is None


def test_a_shipment_moved_away_before_it_left_is_not_its_promise_to_keep() -> None:
    outcomes = [
        outcome(1, shipped_days=None, status=ShipmentStatus.REALLOCATED),
        outcome(2, shipped_days=None, status=ShipmentStatus.REJECTED),
        outcome(3, shipped_days=None, status=ShipmentStatus.CANCELLED),
        outcome(4, shipped_days=1, status=ShipmentStatus.REALLOCATED),  # moved, shipped anyway
    ]
    figures = promise_kept(outcomes, PromiseWindow(), AS_OF).overall

    assert (figures.shipments, figures.shipped, figures.shipped_late) == (1, 1, 1)


def test_a_shipment_whose_times_were_not_recorded_is_in_no_share() -> None:
    undated = outcome(1, shipped_days=None, status=ShipmentStatus.DELIVERED)
    figures = promise_kept([undated], PromiseWindow(), AS_OF).overall

    assert (figures.shipments, figures.shipped, figures.delivered) == (1, 0, 0)
    assert (figures.shipped_undated, figures.delivered_undated, figures.overdue) == (1, 1, 0)


def test_a_shipment_planned_before_promises_were_recorded_is_not_measured() -> None:
    unpromised = ShipmentOutcome("o-1", "o-1-S1", "web", "DC-1", None, None, ShipmentStatus.SHIPPED)
    assert promise_kept([unpromised], PromiseWindow(), AS_OF).overall.shipments == 0


@pytest.mark.parametrize(
    ("moment", "late"),
    [
        (datetime(2026, 12, 1, 23, 59, tzinfo=UTC), 0),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), 1),
        # 19:30 in Chicago on the ship-by date is 01:30 the next day in UTC: a day late.
        (datetime(2026, 12, 1, 19, 30, tzinfo=timezone(timedelta(hours=-6))), 1),
        (datetime(2026, 12, 2, 0, 30, tzinfo=timezone(timedelta(hours=2))), 0),
        (datetime(2026, 11, 25, 8, 0, tzinfo=UTC), 0),
    ],
)
def test_lateness_is_whole_days_after_the_due_date_in_utc(moment: datetime, late: int) -> None:
    assert days_late(moment, date(2026, 12, 1)) == late
