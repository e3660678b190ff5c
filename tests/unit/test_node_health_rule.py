"""The node-health rule: a node failing most of its recent shipments is degraded, with the
figures; one that fails now and then is left alone. And which status changes move a node's
unpicked orders."""

import pytest

from domain.node_health import NodeHealthRule, NodeRecord, degradation_reason
from domain.node_status import InvalidStatusChange, NodeStatus, reallocates_unpicked

RULE = NodeHealthRule(window_seconds=900, min_incidents=3, max_incident_share=0.5)


def _record(shipments: int, rejected: int, late: int = 0) -> NodeRecord:
    return NodeRecord("store-7", shipments, rejected + late, rejected, late)


def test_a_node_failing_most_of_its_recent_shipments_is_degraded_with_the_figures() -> None:
    reason = degradation_reason(_record(shipments=5, rejected=2, late=1), RULE)

    assert reason is not None
    assert "3 of its last 5 shipments failed (2 rejected, 1 missed an SLA)" in reason
    assert "50%" in reason


def test_a_busy_node_with_a_few_failures_stays_up() -> None:
    assert degradation_reason(_record(shipments=400, rejected=6), RULE) is None


def test_a_quiet_node_with_one_or_two_failures_stays_up() -> None:
    assert degradation_reason(_record(shipments=2, rejected=2), RULE) is None


def test_failures_on_shipments_no_longer_counted_still_weigh_as_shipments() -> None:
    # Incidents whose reservations were touched before the window still count as handled.
    assert degradation_reason(_record(shipments=0, rejected=3), RULE) is not None


def test_down_moves_unpicked_orders_degraded_only_when_asked_up_never() -> None:
    assert reallocates_unpicked(NodeStatus.DOWN, None) is True
    assert reallocates_unpicked(NodeStatus.DOWN, False) is False
    assert reallocates_unpicked(NodeStatus.DEGRADED, None) is False
    assert reallocates_unpicked(NodeStatus.DEGRADED, True) is True
    assert reallocates_unpicked(NodeStatus.UP, None) is False
    with pytest.raises(InvalidStatusChange, match="reallocate_unpicked"):
        reallocates_unpicked(NodeStatus.UP, True)
