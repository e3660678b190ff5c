"""Partner callbacks as units of work: which order and shipment a callback names, as the read
model knows them (checked before anything reaches a workflow), and the events an order's workflow
can no longer take because it has closed, kept in the read model instead of dropped."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.lifecycle import LEFT_NODE_EVENTS, MOVED_SHIPMENT_STATUSES
from domain.orders import NodeEventType, OrderState, OrderStatus, ShipmentStatus, TimelineEntry
from ledger import late_shipments, orders_view
from ledger.db import transaction
from ledger.tables import OrderView, utcnow

LATE_EVENT = "late_event"  # the timeline entry of an event that came after the workflow closed


# Per event, the shipment statuses that show the order's workflow has already taken it: the
# workflow would ignore it as a duplicate, so the callback need not signal it again (each signal
# is a history event; a partner resending for ever must not fill the order's history).
_TAKEN_BY = {
    NodeEventType.ACCEPTED: frozenset(
        {
            ShipmentStatus.ACCEPTED,
            ShipmentStatus.PICKED,
            ShipmentStatus.LABELLED,
            ShipmentStatus.SHIPPED,
            ShipmentStatus.DELIVERED,
        }
    ),
    NodeEventType.PICKED: frozenset(
        {
            ShipmentStatus.PICKED,
            ShipmentStatus.LABELLED,
            ShipmentStatus.SHIPPED,
            ShipmentStatus.DELIVERED,
        }
    ),
    NodeEventType.SHIPPED: frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED}),
    NodeEventType.DELIVERED: frozenset({ShipmentStatus.DELIVERED}),
    NodeEventType.REJECTED: frozenset({ShipmentStatus.REJECTED}),
}


@dataclass(frozen=True, slots=True)
class ShipmentRef:
    """What the read model knows of a callback's order and shipment: the order's status, the
    node the shipment is at and its status (both None: the order has no such shipment)."""

    order_status: OrderStatus
    node_id: str | None
    shipment_status: ShipmentStatus | None = None

    def already_taken(self, event: NodeEventType) -> bool:
        """The workflow has taken this event for the shipment: a resend."""
        return self.shipment_status in _TAKEN_BY[event]


def shipment_ref(session: Session, order_id: str, shipment_id: str) -> ShipmentRef | None:
    """None if the read model has no such order. Node callbacks ask this for every event:
    two fields do not need the whole order validated."""
    row = session.exec(
        select(OrderView.status, OrderView.document).where(col(OrderView.order_id) == order_id)
    ).first()
    if row is None:
        return None
    status, document = row
    for shipment in document.get("shipments", []):
        if shipment.get("shipment_id") == shipment_id:
            shipment_status = shipment.get("status")
            return ShipmentRef(
                OrderStatus(status),
                shipment.get("node_id"),
                ShipmentStatus(shipment_status) if shipment_status else None,
            )
    return ShipmentRef(OrderStatus(status), None)


def record_after_close(
    engine: Engine,
    order_id: str,
    shipment_id: str,
    sender: str,
    event: NodeEventType,
    reason: str | None = None,
    tracking_number: str | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """An event for an order whose workflow has ended. `delivered` marks the shipment DELIVERED
    (ledger.orders_view.record_delivery); any other event goes on the order's timeline as a
    late event, for ops to see, once however often the partner resends it. False if the read
    model has no such order or shipment."""
    with transaction(engine) as tx:
        if event in LEFT_NODE_EVENTS:
            _reconcile_shipped_after_close(tx, order_id, shipment_id, occurred_at)
        if event == NodeEventType.DELIVERED:
            return orders_view.record_delivery(tx, order_id, shipment_id, sender)
        return _note_late_event(tx, order_id, shipment_id, sender, event, reason, tracking_number)


def _reconcile_shipped_after_close(
    session: Session, order_id: str, shipment_id: str, shipped_at: datetime | None
) -> None:
    """A shipment the closed order had moved away left its node all the same (audit H3, after
    the workflow could act): its units leave that node's stock, the shipment is SHIPPED in the
    read model, and a person is told (a double shipment to intercept, or a return to raise)."""
    view = session.exec(
        select(OrderView).where(col(OrderView.order_id) == order_id).with_for_update()
    ).first()
    if view is None:
        return
    state = OrderState.model_validate(view.document)
    shipment = next((s for s in state.shipments if s.shipment_id == shipment_id), None)
    if shipment is None or shipment.status not in MOVED_SHIPMENT_STATUSES:
        return
    late_shipments.ship_released(session, order_id, shipment_id, shipped_at)
    was = shipment.status
    shipment.status = ShipmentStatus.SHIPPED
    why = (
        f"{shipment_id} shipped from {shipment.node_id} after the order was {state.status} "
        f"(it was {str(was).lower()}): a double shipment to intercept or a return to raise"
    )
    state.attention = "; ".join(filter(None, [state.attention, why]))
    state.timeline.append(TimelineEntry(at=utcnow(), event="attention", detail=why))
    orders_view.store_state(view, state)
    session.add(view)


def _note_late_event(
    session: Session,
    order_id: str,
    shipment_id: str,
    sender: str,
    event: NodeEventType,
    reason: str | None,
    tracking_number: str | None,
) -> bool:
    # Locked: another late event or a delivery scan rewrites the same document.
    view = session.exec(
        select(OrderView).where(col(OrderView.order_id) == order_id).with_for_update()
    ).first()
    if view is None:
        return False
    state = OrderState.model_validate(view.document)
    if not any(s.shipment_id == shipment_id for s in state.shipments):
        return False
    detail = f"{event} from {sender} for {shipment_id} after the order was {state.status}"
    if reason:
        detail += f": {reason.replace(chr(0), '')}"  # PostgreSQL refuses NUL in a document
    if tracking_number:
        detail += f" (tracking {tracking_number})"
    if any(e.event == LATE_EVENT and e.detail == detail for e in state.timeline):
        return True  # a resend
    state.timeline.append(TimelineEntry(at=utcnow(), event=LATE_EVENT, detail=detail))
    orders_view.store_state(view, state)
    session.add(view)
    return True
