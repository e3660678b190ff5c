"""Stock positions and order reservations.

Every counter change is one conditional UPDATE evaluated by the database (ledger.positions), never
read-then-write in Python, so concurrent orders cannot oversell. Rows are touched in (node_id, sku)
order so two transactions never wait on each other in opposite orders. Callers own the transaction
(ledger.db.transaction): a multi-line reservation commits whole or not at all.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from domain.availability import ChannelPoolRule, visible_to_channel
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from ledger.availability import positions_for
from ledger.errors import InsufficientStock, NegativeStock, UnknownPosition
from ledger.positions import ATP, keeps_commitments, move_stock, record_movements
from ledger.safety import effective_safety_stock
from ledger.tables import (
    MovementKind,
    Node,
    Reservation,
    ReservationStatus,
    StockMovement,
    StockPosition,
    utcnow,
)

_RESERVATIONS = Reservation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReservationRequest:
    order_id: str
    shipment_id: str
    line_no: int
    node_id: str
    sku: str
    quantity: int


def candidate_nodes(
    session: Session, skus: Iterable[str], pool: ChannelPoolRule | None = None
) -> list[CandidateNode]:
    """Active nodes with what the channel may promise now at each, for these SKUs."""
    nodes = {n.node_id: n for n in session.exec(select(Node).where(col(Node.active).is_(True)))}
    candidates: dict[str, CandidateNode] = {}
    for figures in positions_for(session, skus):
        node = nodes.get(figures.node_id)
        if node is None:
            continue
        candidate = candidates.setdefault(node.node_id, _candidate(node))
        units = visible_to_channel(figures, pool)
        if units > 0:
            candidate.available[figures.sku] = units
    return sorted(candidates.values(), key=lambda c: c.node_id)


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
        taken = move_stock(
            session, req.node_id, req.sku, MovementKind.RESERVATION, req.order_id,
            d_reserved=req.quantity, condition=req.quantity <= ATP,
        )  # fmt: skip
        if not taken:
            raise InsufficientStock(node_id=req.node_id, sku=req.sku, quantity=req.quantity)
        record_reservation(session, req)


def record_reservation(session: Session, req: ReservationRequest) -> None:
    """One row per order, shipment and line: a line divided between nodes has a row per piece,
    and a piece sourced again is a new shipment's row. A released row of the same shipment and
    line (none is made by the order workflow, which numbers every shipment anew) is reused."""
    revived = session.connection().execute(  # Core: see ledger.positions.move_stock
        update(_RESERVATIONS)
        .where(
            col(Reservation.order_id) == req.order_id,
            col(Reservation.shipment_id) == req.shipment_id,
            col(Reservation.line_no) == req.line_no,
            col(Reservation.status) == ReservationStatus.RELEASED,
        )
        .values(
            status=ReservationStatus.ACTIVE,
            node_id=req.node_id,
            sku=req.sku,
            quantity=req.quantity,
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
    for r in _active_of(session, order_id, shipment_ids):
        if _close_reservation(session, r, ReservationStatus.RELEASED):
            move_stock(
                session, r.node_id, r.sku, MovementKind.RELEASE, order_id, d_reserved=-r.quantity
            )
            units += r.quantity
    return units


def fulfil(
    session: Session, order_id: str, shipment_id: str, shipped_at: datetime | None = None
) -> int:
    """The shipment left the node: its reserved units leave on hand. Idempotent.

    `shipped_at` is when the node says the parcel left (None: now). A parcel that left before
    the position's last snapshot was counted out by that snapshot already: only its reservation
    closes. On hand stops at zero: a node that ships more than a count said it had proves the
    count short, not that stock went negative."""
    units = 0
    for r in _active_of(session, order_id, [shipment_id]):
        if _close_reservation(session, r, ReservationStatus.FULFILLED):
            q = r.quantity
            leaving = units_leaving(session, r.node_id, r.sku, q, shipped_at)
            move_stock(
                session, r.node_id, r.sku, MovementKind.SHIPMENT, shipment_id,
                d_on_hand=-leaving, d_reserved=-q,
                at=_utc(shipped_at) if shipped_at else None,
            )  # fmt: skip
            units += q
    return units


def units_leaving(
    session: Session, node_id: str, sku: str, quantity: int, shipped_at: datetime | None
) -> int:
    """How many of a shipment's units still count in on hand, read under the position's row
    lock (PostgreSQL; SQLite writers are serialised) so the movement that follows matches."""
    on_hand, counted_as_of = session.execute(
        sa_select(StockPosition.on_hand, StockPosition.snapshot_as_of)
        .where(col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku)
        .with_for_update()
    ).one()
    if shipped_at and counted_as_of and _utc(shipped_at) <= _utc(counted_as_of):
        return 0  # the count already left it out
    return max(0, min(quantity, on_hand))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _active_of(
    session: Session, order_id: str, shipment_ids: list[str] | None
) -> list[Reservation]:
    rows = active_reservations(session, order_id)
    if shipment_ids is not None:
        rows = [r for r in rows if r.shipment_id in shipment_ids]
    return sorted(rows, key=lambda r: (r.node_id, r.sku, r.line_no))


def _close_reservation(session: Session, reservation: Reservation, to_status: str) -> bool:
    """Compare-and-set on the reservation's status: only one caller wins a retry race."""
    result = session.connection().execute(  # Core: see ledger.positions.move_stock
        update(_RESERVATIONS)
        .where(
            col(Reservation.id) == reservation.id,
            col(Reservation.status) == ReservationStatus.ACTIVE,
        )
        .values(status=to_status, updated_at=utcnow())
    )
    return result.rowcount == 1


def adjust_on_hand(
    session: Session, node_id: str, sku: str, delta: int, cause: str = "manual adjustment"
) -> StockPosition:
    """Receive (+) or remove (-) stock; refuses to take on hand below what is reserved or held
    (ledger.positions.keeps_commitments)."""
    position = get_position(session, node_id, sku)
    applied = move_stock(
        session, node_id, sku, MovementKind.ADJUSTMENT, cause,
        d_on_hand=delta, condition=keeps_commitments(delta),
    )  # fmt: skip
    if not applied:
        raise NegativeStock(node_id=node_id, sku=sku, delta=delta)
    session.refresh(position)
    return position


def get_position(session: Session, node_id: str, sku: str) -> StockPosition:
    position = session.exec(
        select(StockPosition).where(
            col(StockPosition.node_id) == node_id, col(StockPosition.sku) == sku
        )
    ).first()
    if position is None:
        raise UnknownPosition(node_id=node_id, sku=sku)
    return position


def open_position(
    session: Session, node_id: str, sku: str, on_hand: int = 0, safety_override: int | None = None
) -> StockPosition:
    """Create a position with its opening balance recorded as a ledger entry."""
    position = StockPosition(
        node_id=node_id,
        sku=sku,
        on_hand=on_hand,
        safety_override=safety_override,
        safety_stock=effective_safety_stock(session, node_id, safety_override),
    )
    session.add(position)
    session.flush()
    if on_hand:
        record_movements(
            session,
            [{"node_id": node_id, "sku": sku, "kind": MovementKind.SNAPSHOT,
              "cause": "opening balance", "d_on_hand": on_hand}],
        )  # fmt: skip
    return position


def last_movement_id(session: Session) -> int:
    """The id of the newest stock movement: every movement an allocation reading after this
    could see has an id up to it (services.backorders: what is new to an order since)."""
    return session.exec(select(func.max(StockMovement.id))).one() or 0
