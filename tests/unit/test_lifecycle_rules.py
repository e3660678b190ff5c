"""Order status, support-action, node-event and move rules, called directly."""

from domain.lifecycle import (
    IncidentKind,
    NodeEventDecision,
    NodeEventOutcome,
    ShipmentMove,
    accept_node_event,
    cancel_refusal,
    delivery_scan_goes_to_read_model,
    derive_status,
    movable_shipments,
    reallocate_refusal,
    retry_refusal,
)
from domain.orders import (
    TERMINAL_ORDER_STATUSES,
    NodeEventType,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentStatus,
)


def shipment(sid: str, status: ShipmentStatus, node: str = "N1") -> Shipment:
    line = OrderLine(line_no=1, sku="A", quantity=1)
    return Shipment(
        shipment_id=sid, node_id=node, node_type="warehouse", lines=[line], status=status
    )


def test_order_completes_only_when_every_live_shipment_shipped_and_nothing_waits() -> None:
    shipped = [shipment("S1", ShipmentStatus.SHIPPED), shipment("S2", ShipmentStatus.REJECTED)]

    assert derive_status(OrderStatus.IN_FULFILLMENT, shipped, 0, False) == OrderStatus.COMPLETED
    assert derive_status(OrderStatus.IN_FULFILLMENT, shipped, 1, False) == (
        OrderStatus.PARTIALLY_SHIPPED
    )


def test_backorder_wins_over_shipments_in_flight() -> None:
    open_ = [shipment("S1", ShipmentStatus.ACCEPTED)]

    assert derive_status(OrderStatus.ALLOCATED, open_, 1, True) == OrderStatus.BACKORDERED


def test_terminal_statuses_never_change() -> None:
    assert derive_status(OrderStatus.CANCELLED, [], 0, False) == OrderStatus.CANCELLED


def test_cancel_is_refused_after_shipping_and_when_closed() -> None:
    shipped = [shipment("S1", ShipmentStatus.SHIPPED)]

    assert cancel_refusal(OrderStatus.PARTIALLY_SHIPPED, shipped) is not None
    assert "COMPLETED" in (cancel_refusal(OrderStatus.COMPLETED, []) or "")
    assert (
        cancel_refusal(OrderStatus.IN_FULFILLMENT, [shipment("S1", ShipmentStatus.PICKED)]) is None
    )


def test_only_unpicked_shipments_can_move() -> None:
    shipments = [
        shipment("S1", ShipmentStatus.ACCEPTED, "N1"),
        shipment("S2", ShipmentStatus.PICKED, "N2"),
        shipment("S3", ShipmentStatus.RELEASED, "N3"),
    ]

    assert [s.shipment_id for s in movable_shipments(shipments, None)] == ["S1", "S3"]
    assert [s.shipment_id for s in movable_shipments(shipments, "N2")] == []


def test_cancel_is_refused_while_a_cancellation_is_in_progress_after_the_closing_rules() -> None:
    open_ = [shipment("S1", ShipmentStatus.ACCEPTED)]

    assert cancel_refusal(OrderStatus.IN_FULFILLMENT, open_, cancel_in_progress=True) == (
        "a cancellation is already in progress"
    )
    assert cancel_refusal(OrderStatus.COMPLETED, [], cancel_in_progress=True) == (
        "order is already COMPLETED"
    )


def test_retry_is_refused_while_one_is_in_progress_and_for_an_order_not_backordered() -> None:
    assert retry_refusal(OrderStatus.BACKORDERED, retry_in_progress=False) is None
    assert retry_refusal(OrderStatus.BACKORDERED, retry_in_progress=True) == (
        "a retry is already in progress"
    )
    assert retry_refusal(OrderStatus.IN_FULFILLMENT, retry_in_progress=False) == (
        "only a backordered order can be retried; this one is IN_FULFILLMENT"
    )


def test_reallocate_is_refused_for_a_closed_or_cancelling_order() -> None:
    open_ = [shipment("S1", ShipmentStatus.ACCEPTED)]

    for status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REJECTED):
        assert reallocate_refusal(status, open_, None, cancel_in_progress=False) == (
            f"order is {status}"
        )
    assert reallocate_refusal(OrderStatus.RELEASED, open_, None, cancel_in_progress=True) == (
        "order is RELEASED"
    )


def test_reallocate_is_refused_when_no_shipment_can_move_naming_the_node_asked_for() -> None:
    picked = [shipment("S1", ShipmentStatus.PICKED, "N1"), shipment("S2", ShipmentStatus.ACCEPTED)]

    assert reallocate_refusal(OrderStatus.IN_FULFILLMENT, picked, None, False) is None
    assert reallocate_refusal(OrderStatus.IN_FULFILLMENT, picked[:1], None, False) == (
        "no shipment can move: only shipments not yet picked can be reallocated"
    )
    assert reallocate_refusal(OrderStatus.IN_FULFILLMENT, picked, "N9", False) == (
        "no shipment at N9 can move: only shipments not yet picked can be reallocated"
    )


def test_delivery_scans_of_completed_or_cancelled_orders_go_to_the_read_model() -> None:
    closed = {s for s in OrderStatus if delivery_scan_goes_to_read_model(s)}

    assert closed == {OrderStatus.COMPLETED, OrderStatus.CANCELLED}
    assert closed < TERMINAL_ORDER_STATUSES  # a rejected order has no parcel to scan


def test_an_event_for_another_orders_shipment_or_from_another_node_is_ignored_with_a_note() -> None:
    s1 = shipment("S1", ShipmentStatus.RELEASED, "N1")

    unknown = accept_node_event(None, "S9", "N1", NodeEventType.ACCEPTED, set())
    wrong_node = accept_node_event(s1, "S1", "N2", NodeEventType.PICKED, set())

    assert unknown == NodeEventDecision(
        NodeEventOutcome.UNKNOWN_SHIPMENT, "accepted from N1 for unknown shipment S9"
    )
    assert wrong_node.note == "picked from N2 for unknown shipment S1"
    assert not unknown.accepted and not wrong_node.accepted


def test_a_repeated_event_is_dropped_without_a_note() -> None:
    s1 = shipment("S1", ShipmentStatus.ACCEPTED)

    decision = accept_node_event(s1, "S1", "N1", NodeEventType.ACCEPTED, {NodeEventType.ACCEPTED})

    assert decision == NodeEventDecision(NodeEventOutcome.DUPLICATE, None)
    assert not decision.accepted


def test_delivered_counts_only_once_the_shipment_has_shipped() -> None:
    early = accept_node_event(
        shipment("S1", ShipmentStatus.LABELLED), "S1", "N1", NodeEventType.DELIVERED, set()
    )
    after = accept_node_event(
        shipment("S1", ShipmentStatus.SHIPPED), "S1", "N1", NodeEventType.DELIVERED, set()
    )

    assert early == NodeEventDecision(
        NodeEventOutcome.DELIVERED_BEFORE_SHIPPED, "delivered for S1 before it shipped"
    )
    assert after == NodeEventDecision(NodeEventOutcome.ACCEPTED, None) and after.accepted


def test_a_node_event_in_order_is_accepted() -> None:
    s1 = shipment("S1", ShipmentStatus.RELEASED)

    assert accept_node_event(s1, "S1", "N1", NodeEventType.REJECTED, set()).accepted
    assert accept_node_event(
        s1, "S1", "N1", NodeEventType.PICKED, {NodeEventType.ACCEPTED}
    ).accepted


# The reasons below are the exact texts of the timeline, the shipment's reason and the cancel sent
# to the node: the timeline is part of every projection, so they must not change wording.
def test_a_node_rejection_or_missed_sla_is_sourced_again_and_counts_against_the_node() -> None:
    rejected = ShipmentMove.rejected_by_node("N1", "stock not found")
    silent = ShipmentMove.rejected_by_node("N1", None)
    late = ShipmentMove.missed_sla("N1", NodeEventType.ACCEPTED, 1.0)

    assert rejected == ShipmentMove(
        ShipmentStatus.REJECTED, "N1 rejected: stock not found", source_again=True, node_fault=True
    )
    assert silent.reason == "N1 rejected: no reason given"
    assert late == ShipmentMove(
        ShipmentStatus.TIMED_OUT, "N1 missed its accepted SLA (1s)", True, node_fault=True
    )
    assert ShipmentMove.missed_sla("N1", NodeEventType.PICKED, 1.5).reason == (
        "N1 missed its picked SLA (1.5s)"
    )
    assert (rejected.incident, late.incident) == (IncidentKind.REJECTED, IncidentKind.TIMED_OUT)
    assert not rejected.cancels_at_node  # the node already dropped it
    assert late.cancels_at_node  # the node may still work on it


def test_a_refused_release_is_rejected_and_an_unanswered_one_timed_out_both_node_faults() -> None:
    refused = ShipmentMove.release_failed(True, "ConnectorRefused: no such SKU")
    unanswered = ShipmentMove.release_failed(False, "activity timed out")

    assert refused == ShipmentMove(
        ShipmentStatus.REJECTED, "release failed: ConnectorRefused: no such SKU", True, True
    )
    assert unanswered == ShipmentMove(
        ShipmentStatus.TIMED_OUT, "release failed: activity timed out", True, True
    )
    assert not refused.cancels_at_node and unanswered.cancels_at_node
    assert (refused.incident, unanswered.incident) == ("rejected", "timed_out")


def test_a_failed_label_or_hand_over_is_sourced_again_without_blaming_the_node() -> None:
    move = ShipmentMove.label_failed("ConnectorRefused: carrier down")

    assert move == ShipmentMove(
        ShipmentStatus.REJECTED, "label or hand-over failed: ConnectorRefused: carrier down", True
    )
    assert move.incident is None and not move.cancels_at_node


def test_support_moves_are_sourced_again_order_cancels_are_not_neither_blames_the_node() -> None:
    moved = ShipmentMove.moved_by_support("store flooded")
    cancelled = ShipmentMove.cancelled_with_order("customer changed their mind")

    assert moved == ShipmentMove(ShipmentStatus.REALLOCATED, "support: store flooded", True)
    assert cancelled == ShipmentMove(
        ShipmentStatus.CANCELLED, "order cancelled: customer changed their mind", False
    )
    assert moved.incident is None and cancelled.incident is None
    assert moved.cancels_at_node and cancelled.cancels_at_node


def test_incident_kinds_are_the_stored_strings() -> None:
    assert [str(k) for k in IncidentKind] == ["rejected", "timed_out", "late"]
