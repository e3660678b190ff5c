"""Stock positions and reservations.

Every counter change is one conditional UPDATE evaluated by the database, never read-then-write in
Python, so concurrent orders cannot oversell. Rows are touched in (node_id, sku) order so two
transactions never wait on each other in opposite orders. Callers own the transaction
(ledger.db.transaction): a multi-line reservation commits whole or not at all.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from ledger.errors import InsufficientStock, NegativeStock, UnknownPosition
from ledger.tables import Node, Reservation, ReservationStatus, StockPosition, utcnow


@dataclass(frozen=True)
class ReservationRequest:
    order_id: str
    shipment_id: str
    line_no: int
    node_id: str
    sku: str
    quantity: int


def candidate_nodes(session: Session, skus: Iterable[str]) -> list[CandidateNode]:
    """Active nodes with what each can promise now for these SKUs (on hand - reserved - safety)."""
    rows = session.exec(
        select(Node, StockPosition)
        .join(StockPosition, col(StockPosition.node_id) == col(Node.node_id))
        .where(col(Node.active).is_(True), col(StockPosition.sku).in_(list(skus)))
    ).all()
    nodes: dict[str, CandidateNode] = {}
    for node, position in rows:
        candidate = nodes.setdefault(node.node_id, _candidate(node))
        atp = position.on_hand - position.reserved - position.safety_stock
        if atp > 0:
            candidate.available[position.sku] = atp
    return sorted(nodes.values(), key=lambda c: c.node_id)


def _candidate(node: Node) -> CandidateNode:
    return CandidateNode(
        node_id=node.node_id,
        node_type=NodeType(node.node_type),
        location=GeoPoint(lat=node.lat, lon=node.lon),
        can_ship=node.can_ship,
        can_pickup=node.can_pickup,
        priority=node.priority,
        available={},
    )


def reserve(session: Session, requests: list[ReservationRequest]) -> None:
    """Reserve every request or raise InsufficientStock (the caller's transaction rolls back)."""
    for req in sorted(requests, key=lambda r: (r.node_id, r.sku, r.line_no)):
        _take_available(session, req.node_id, req.sku, req.quantity)
        _record_reservation(session, req)


def _take_available(session: Session, node_id: str, sku: str, quantity: int) -> None:
    position = col(StockPosition.on_hand) - col(StockPosition.reserved)
    result = session.exec(  # type: ignore[call-overload]
        update(StockPosition)
        .where(
            col(StockPosition.node_id) == node_id,
            col(StockPosition.sku) == sku,
            position - col(StockPosition.safety_stock) >= quantity,
        )
        .values(reserved=col(StockPosition.reserved) + quantity, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise InsufficientStock(node_id=node_id, sku=sku, quantity=quantity)


def _record_reservation(session: Session, req: ReservationRequest) -> None:
    """One row per order, line and node: a line that comes back to a node reuses its old row."""
    revived = session.exec(  # type: ignore[call-overload]
        update(Reservation)
        .where(
            col(Reservation.order_id) == req.order_id,
            col(Reservation.line_no) == req.line_no,
            col(Reservation.node_id) == req.node_id,
            col(Reservation.status) == ReservationStatus.RELEASED,
        )
        .values(
            status=ReservationStatus.ACTIVE,
            quantity=req.quantity,
            shipment_id=req.shipment_id,
            updated_at=utcnow(),
        )
    )
    if revived.rowcount == 0:
        session.add(
            Reservation(
                order_id=req.order_id,
                line_no=req.line_no,
                node_id=req.node_id,
                sku=req.sku,
                quantity=req.quantity,
                shipment_id=req.shipment_id,
            )
        )
        session.flush()


def active_reservations(session: Session, order_id: str) -> list[Reservation]:
    return list(
        session.exec(
            select(Reservation)
            .where(
                col(Reservation.order_id) == order_id,
                col(Reservation.status) == ReservationStatus.ACTIVE,
            )
            .order_by(col(Reservation.shipment_id), col(Reservation.line_no))
        ).all()
    )


def release(session: Session, order_id: str, shipment_ids: list[str] | None = None) -> int:
    """Release the order's active reservations (all, or those of the given shipments).
    Idempotent: a released row is never released twice. Returns the units released."""
    units = 0
    for reservation in _locked_active(session, order_id, shipment_ids):
        if _move_reservation(session, reservation, ReservationStatus.RELEASED):
            _adjust_position(session, reservation, reserved=-reservation.quantity, on_hand=0)
            units += reservation.quantity
    return units


def fulfil(session: Session, order_id: str, shipment_id: str) -> int:
    """The shipment left the node: its reserved units leave on hand. Idempotent."""
    units = 0
    for reservation in _locked_active(session, order_id, [shipment_id]):
        if _move_reservation(session, reservation, ReservationStatus.FULFILLED):
            q = reservation.quantity
            _adjust_position(session, reservation, reserved=-q, on_hand=-q)
            units += q
    return units


def _locked_active(
    session: Session, order_id: str, shipment_ids: list[str] | None
) -> list[Reservation]:
    rows = active_reservations(session, order_id)
    if shipment_ids is not None:
        rows = [r for r in rows if r.shipment_id in shipment_ids]
    return sorted(rows, key=lambda r: (r.node_id, r.sku, r.line_no))


def _move_reservation(session: Session, reservation: Reservation, to_status: str) -> bool:
    """Compare-and-set on the reservation's status: only one caller wins a retry race."""
    result = session.exec(  # type: ignore[call-overload]
        update(Reservation)
        .where(
            col(Reservation.id) == reservation.id,
            col(Reservation.status) == ReservationStatus.ACTIVE,
        )
        .values(status=to_status, updated_at=utcnow())
    )
    return result.rowcount == 1


def _adjust_position(
    session: Session, reservation: Reservation, reserved: int, on_hand: int
) -> None:
    session.exec(  # type: ignore[call-overload]
        update(StockPosition)
        .where(
            col(StockPosition.node_id) == reservation.node_id,
            col(StockPosition.sku) == reservation.sku,
        )
        .values(
            reserved=col(StockPosition.reserved) + reserved,
            on_hand=col(StockPosition.on_hand) + on_hand,
            updated_at=utcnow(),
        )
    )


def adjust_on_hand(session: Session, node_id: str, sku: str, delta: int) -> StockPosition:
    """Receive (+) or remove (-) stock; refuses to take on hand below what is reserved."""
    position = session.exec(
        select(StockPosition).where(
            col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku
        )
    ).first()
    if position is None:
        raise UnknownPosition(node_id=node_id, sku=sku)
    result = session.exec(  # type: ignore[call-overload]
        update(StockPosition)
        .where(
            col(StockPosition.id) == position.id,
            col(StockPosition.on_hand) + delta >= col(StockPosition.reserved),
        )
        .values(on_hand=col(StockPosition.on_hand) + delta, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise NegativeStock(node_id=node_id, sku=sku, delta=delta)
    session.refresh(position)
    return position
