"""Lateness against promise in the node-health rule: a node that ships most of its recent parcels
after their ship-by date is degraded, with the figures; a node that is never late is judged
exactly as before; a late parcel does not weigh like a rejected one."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from domain.node_health import (
    NodeHealthRule,
    NodeRecord,
    degradation_reason,
    late_shipment_reason,
)

RULE = NodeHealthRule(window_seconds=900, min_incidents=3, max_incident_share=0.5)


def _record(shipments: int, failed: int = 0, late: int = 0) -> NodeRecord:
    return NodeRecord("DC-1", shipments, failed, failed, 0, late)


def test_a_node_shipping_most_of_its_parcels_late_is_degraded_with_the_figures() -> None:
    reason = degradation_reason(_record(shipments=5, late=3), RULE)

    assert reason is not None
    assert "3 of its last 5 shipments left after their ship-by date in 15 min" in reason
    assert "above the 50% threshold" in reason


def test_a_node_late_now_and_then_stays_up() -> None:
    assert degradation_reason(_record(shipments=100, late=10), RULE) is None
    assert degradation_reason(_record(shipments=2, late=2), RULE) is None  # below the minimum


def test_the_late_share_is_a_threshold_of_its_own() -> None:
    strict = NodeHealthRule(min_incidents=3, max_late_share=0.1)
    assert degradation_reason(_record(shipments=30, late=3), strict) is not None
    assert degradation_reason(_record(shipments=30, late=3), RULE) is None


def test_a_node_never_late_is_judged_as_before() -> None:
    # The default rule with no lateness: the failure figures alone decide, as they did.
    assert NodeHealthRule() == NodeHealthRule(900.0, 3, 0.5, 0.5)
    assert degradation_reason(_record(shipments=5, failed=3), RULE) is not None
    assert degradation_reason(_record(shipments=7, failed=3), RULE) is None


def test_late_parcels_and_failures_are_not_added_together() -> None:
    # Two rejected and two late of four: neither is three, so neither rule is broken.
    assert degradation_reason(_record(shipments=4, failed=2, late=2), RULE) is None


def test_a_shipment_is_late_when_its_utc_date_is_after_its_ship_by_date() -> None:
    ship_by = date(2026, 12, 1)
    on_the_day = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    chicago_evening = datetime(2026, 12, 1, 19, 30, tzinfo=timezone(timedelta(hours=-6)))

    assert late_shipment_reason(on_the_day, ship_by) is None
    assert late_shipment_reason(chicago_evening, ship_by) == (
        "shipped 2026-12-02, 1 day after its ship-by date 2026-12-01"
    )
    assert late_shipment_reason(datetime(2026, 12, 4, 8, tzinfo=UTC), ship_by) == (
        "shipped 2026-12-04, 3 days after its ship-by date 2026-12-01"
    )


def test_an_evening_wave_on_the_nodes_clock_is_not_a_day_late() -> None:
    ship_by = date(2026, 12, 1)
    chicago = ZoneInfo("America/Chicago")
    evening_wave = datetime(2026, 12, 1, 18, 30, tzinfo=chicago)  # 00:30 UTC the next day
    next_morning = datetime(2026, 12, 2, 8, 0, tzinfo=chicago)

    assert late_shipment_reason(evening_wave, ship_by, chicago) is None
    assert late_shipment_reason(next_morning, ship_by, chicago) == (
        "shipped 2026-12-02, 1 day after its ship-by date 2026-12-01"
    )
