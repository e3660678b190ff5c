"""The order's lifecycle rules, pure so they are tested directly: its status from its shipments,
which support actions each state allows, which node events it takes, and why and how a shipment
leaves its node (the move policy). workflows/order.py sequences them; it decides nothing itself."""

from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from domain.orders import (
    BACKORDERED_STATUSES,
    MOVABLE_SHIPMENT_STATUSES,
    OPEN_SHIPMENT_STATUSES,
    TERMINAL_ORDER_STATUSES,
    NodeEventType,
    OrderStatus,
    Shipment,
    ShipmentStatus,
)


def derive_status(
    current: OrderStatus,
    shipments: list[Shipment],
    unallocated_lines: int,
    backordered: bool,
    says_partial: bool = False,
) -> OrderStatus:
    """Status of an order that is neither cancelled nor rejected (those are set explicitly).
    `says_partial` (orders started on Patch.ORDER_PARTIAL_2026_12 or later): a backorder with
    shipments on their way or shipped is PARTIALLY_BACKORDERED, not BACKORDERED."""
    if current in TERMINAL_ORDER_STATUSES:
        return current
    live = [s for s in shipments if s.status in OPEN_SHIPMENT_STATUSES | _SHIPPED]
    shipped = [s for s in live if s.status in _SHIPPED]
    if backordered:
        if says_partial and live:
            return OrderStatus.PARTIALLY_BACKORDERED
        return OrderStatus.BACKORDERED
    if live and len(shipped) == len(live) and unallocated_lines == 0:
        return OrderStatus.COMPLETED
    if shipped:
        return OrderStatus.PARTIALLY_SHIPPED
    if any(s.status in _IN_FULFILLMENT for s in live):
        return OrderStatus.IN_FULFILLMENT
    if any(s.status == ShipmentStatus.RELEASED for s in live):
        return OrderStatus.RELEASED
    if live:
        return OrderStatus.ALLOCATED
    return OrderStatus.RECEIVED


_SHIPPED = frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED})
# The events that say a parcel left its node: a delivery scan implies the shipment shipped.
LEFT_NODE_EVENTS = frozenset({NodeEventType.SHIPPED, NodeEventType.DELIVERED})
# A shipment the order moved away (its reservation released): if its node ships it all the
# same, that is a real shipment, reconciled as one.
MOVED_SHIPMENT_STATUSES = frozenset(
    {
        ShipmentStatus.REJECTED,
        ShipmentStatus.TIMED_OUT,
        ShipmentStatus.REALLOCATED,
        ShipmentStatus.CANCELLED,
    }
)


def has_left_node(seen: Container[NodeEventType]) -> bool:
    return any(event in seen for event in LEFT_NODE_EVENTS)


_IN_FULFILLMENT = frozenset(
    {ShipmentStatus.ACCEPTED, ShipmentStatus.PICKED, ShipmentStatus.LABELLED}
)


def cancel_refusal(
    status: OrderStatus,
    shipments: list[Shipment],
    cancel_in_progress: bool = False,
    force: bool = False,
) -> str | None:
    """Why an order cannot be cancelled now, or None if it can. `force` also cancels labelled
    shipments (each is cancelled at its node; one that has left stays shipped)."""
    if status in TERMINAL_ORDER_STATUSES:
        return f"order is already {status}"
    if any(s.status in _SHIPPED for s in shipments):
        return "order has shipped; raise a return instead"
    if not force and any(s.status == ShipmentStatus.LABELLED for s in shipments):
        # The label is at the node: the parcel may be leaving as we speak.
        return "a shipment is labelled and being handed to the carrier; raise a return instead"
    if cancel_in_progress:
        return "a cancellation is already in progress"
    return None


def movable_shipments(
    shipments: list[Shipment], node_id: str | None, include_picked: bool = False
) -> list[Shipment]:
    """Shipments support may reallocate: not yet picked (or, with `include_picked`, picked or
    labelled but not shipped), optionally at one node."""
    movable = MOVABLE_SHIPMENT_STATUSES | (_PICKED_NOT_SHIPPED if include_picked else frozenset())
    return [
        s for s in shipments if s.status in movable and (node_id is None or s.node_id == node_id)
    ]


_PICKED_NOT_SHIPPED = frozenset({ShipmentStatus.PICKED, ShipmentStatus.LABELLED})


def retry_refusal(status: OrderStatus, retry_in_progress: bool) -> str | None:
    """Why support cannot retry the order's allocation now, or None if it can."""
    if retry_in_progress:
        return "a retry is already in progress"
    if status not in BACKORDERED_STATUSES:
        return f"only a backordered order can be retried; this one is {status}"
    return None


def reallocate_refusal(
    status: OrderStatus,
    shipments: list[Shipment],
    node_id: str | None,
    cancel_in_progress: bool,
    force: bool = False,
) -> str | None:
    """Why support cannot move the order's shipments (at `node_id`, or anywhere) now, or None.
    `force` also moves picked and labelled shipments."""
    if cancel_in_progress or status in TERMINAL_ORDER_STATUSES:
        return f"order is {status}"
    if not movable_shipments(shipments, node_id, include_picked=force):
        where = f" at {node_id}" if node_id else ""
        which = "shipped" if force else "picked"
        return f"no shipment{where} can move: only shipments not yet {which} can be reallocated"
    return None


def mark_shipped_refusal(shipment: Shipment | None, shipment_id: str) -> str | None:
    """Why support cannot record that a shipment left its node, or None if they can. A shipment
    the order had moved away may be marked: that is a late shipment, and the order reconciles."""
    if shipment is None:
        return f"the order has no shipment {shipment_id}"
    if shipment.status in _SHIPPED:
        return f"{shipment_id} is already {shipment.status}"
    if shipment.status == ShipmentStatus.ALLOCATED:
        return f"{shipment_id} has not been released to {shipment.node_id} yet"
    return None


def force_refusal(supports_force: bool) -> str | None:
    """Force actions and mark-shipped need the order's workflow to be on release 2026-12 or
    later: an order started before follows the rules it started with."""
    if supports_force:
        return None
    return "this order started on an older release: it takes only cancel, retry and reallocate"


def delivery_scan_goes_to_read_model(status: OrderStatus) -> bool:
    """A carrier's delivery scan for a COMPLETED or CANCELLED order cannot reach its workflow any
    more (it has ended), so the read model records it; for an open order the workflow does.
    REJECTED is not in the rule on purpose: a rejected order never had a shipment, so a scan can
    never name one of its parcels (the callback answers `shipment_not_found` before asking)."""
    return status in _CLOSED_WITH_SHIPMENTS


_CLOSED_WITH_SHIPMENTS = TERMINAL_ORDER_STATUSES - {OrderStatus.REJECTED}


# ---------------------------------------------------------------- node events
class NodeEventOutcome(StrEnum):
    """What the order does with an event a node (or carrier) sent about one of its shipments."""

    ACCEPTED = "accepted"
    UNKNOWN_SHIPMENT = "unknown_shipment"  # not this order's shipment, or not at that node
    DUPLICATE = "duplicate"  # nodes retry callbacks; the first one counts
    DELIVERED_BEFORE_SHIPPED = "delivered_before_shipped"


@dataclass(frozen=True, slots=True)
class NodeEventDecision:
    outcome: NodeEventOutcome
    note: str | None = None  # the timeline's "ignored" detail; None: nothing goes on the timeline

    @property
    def accepted(self) -> bool:
        return self.outcome == NodeEventOutcome.ACCEPTED


def accept_node_event(
    shipment: Shipment | None,
    shipment_id: str,
    node_id: str,
    event: NodeEventType,
    seen: Container[NodeEventType],
) -> NodeEventDecision:
    """Whether to take a node event: `shipment` is the order's shipment named `shipment_id` (None
    if it has none), `node_id` the sender, `seen` the events already taken for that shipment."""
    if shipment is None or shipment.node_id != node_id:
        return NodeEventDecision(
            NodeEventOutcome.UNKNOWN_SHIPMENT,
            f"{event} from {node_id} for unknown shipment {shipment_id}",
        )
    if event in seen:
        return NodeEventDecision(NodeEventOutcome.DUPLICATE)
    if event == NodeEventType.DELIVERED and shipment.status != ShipmentStatus.SHIPPED:
        return NodeEventDecision(
            NodeEventOutcome.DELIVERED_BEFORE_SHIPPED,
            f"delivered for {shipment_id} before it shipped",
        )
    return NodeEventDecision(NodeEventOutcome.ACCEPTED)


# ---------------------------------------------------------------- the move policy
class IncidentKind(StrEnum):
    """A node's failure of a shipment, as counted by the node-health rule (the `kind` of the
    `NodeIncident` payload and of the ledger's incident rows: the values are stored)."""

    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    # Shipped, but after its ship-by date (UTC): the promise is broken though the parcel left.
    LATE = "late"


@dataclass(frozen=True, slots=True)
class ShipmentMove:
    """Why a shipment must leave its node, and what follows: whether its lines are sourced again
    (without that node) and whether it counts against the node's health. Built only by the named
    constructors below, one per cause."""

    status: ShipmentStatus  # what the shipment becomes
    reason: str  # on the shipment, in the timeline and in the cancel sent to the node
    source_again: bool
    node_fault: bool = False  # the node rejected or was late: counts against its health
    # The node accepted and picked it: it is told to cancel even when the move is a REJECTED
    # one (a failed label), or it keeps a picked parcel in its queue for ever.
    node_holds_it: bool = False
    # The node is down: source the lines again first and cancel there afterwards, instead of
    # holding the move until an unreachable node answers.
    cancel_later: bool = False

    @classmethod
    def rejected_by_node(cls, node_id: str, reason: str | None) -> Self:
        why = f"{node_id} rejected: {reason or 'no reason given'}"
        return cls(ShipmentStatus.REJECTED, why, source_again=True, node_fault=True)

    @classmethod
    def missed_sla(cls, node_id: str, step: NodeEventType, seconds: float) -> Self:
        why = f"{node_id} missed its {step} SLA ({seconds:g}s)"
        return cls(ShipmentStatus.TIMED_OUT, why, source_again=True, node_fault=True)

    @classmethod
    def release_failed(cls, refused: bool, cause: str) -> Self:
        """Refused outright: the node has nothing to cancel (REJECTED). Otherwise it timed out
        and may have the release after all, so TIMED_OUT, which cancels it there."""
        status = ShipmentStatus.REJECTED if refused else ShipmentStatus.TIMED_OUT
        return cls(status, f"release failed: {cause}", source_again=True, node_fault=True)

    @classmethod
    def label_failed(cls, cause: str, node_holds_it: bool = False) -> Self:
        """The carrier would not label it or the node would not take the label: sourced again,
        but the carrier's failure is not the node's. The node has picked it: `node_holds_it`
        cancels it there (orders started before release 2026-12 did not)."""
        why = f"label or hand-over failed: {cause}"
        return cls(ShipmentStatus.REJECTED, why, source_again=True, node_holds_it=node_holds_it)

    @classmethod
    def superseded(cls, shipped_shipment_id: str) -> Self:
        """A replacement not yet picked, for lines an earlier shipment shipped after all."""
        why = f"{shipped_shipment_id} shipped these lines after all"
        return cls(ShipmentStatus.CANCELLED, why, source_again=False)

    @classmethod
    def cancelled_with_order(cls, cancel_reason: str) -> Self:
        why = f"order cancelled: {cancel_reason}"
        return cls(ShipmentStatus.CANCELLED, why, source_again=False)

    @classmethod
    def moved_by_support(cls, reason: str, cancel_later: bool = False) -> Self:
        """Support (or a node outage, through the same update) moves it: not the node's fault."""
        why = f"support: {reason}"
        return cls(ShipmentStatus.REALLOCATED, why, source_again=True, cancel_later=cancel_later)

    @property
    def cancels_at_node(self) -> bool:
        """A shipment the node rejected has nothing to cancel there, unless it holds it picked."""
        return self.status != ShipmentStatus.REJECTED or self.node_holds_it

    @property
    def incident(self) -> IncidentKind | None:
        """The incident to record against the node: rejections and missed SLAs count; moves
        ordered by people, by an outage or caused by a carrier do not."""
        if not self.node_fault:
            return None
        return _INCIDENT_KINDS[self.status]


# A node's fault leaves the shipment REJECTED or TIMED_OUT (see the constructors above).
_INCIDENT_KINDS = {
    ShipmentStatus.REJECTED: IncidentKind.REJECTED,
    ShipmentStatus.TIMED_OUT: IncidentKind.TIMED_OUT,
}
