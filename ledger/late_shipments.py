"""A shipment that shipped after the order had moved it away: its reservation was released
when it moved, but the parcel left the node all the same, so its units leave on hand now."""

from sqlalchemy import update
from sqlmodel import Session, col, select

from ledger.errors import NegativeStock
from ledger.positions import ON_HAND, move_stock
from ledger.tables import MovementKind, Reservation, ReservationStatus, utcnow

_RESERVATIONS = Reservation.__table__  # type: ignore[attr-defined]


def ship_released(session: Session, order_id: str, shipment_id: str) -> int:
    """Turn the shipment's released reservations into fulfilled ones and take their units off
    on hand. Idempotent: a compare-and-set on each row's status, so a retry takes nothing twice.
    Refuses (NegativeStock) when the node no longer counts that many units on hand: the stock
    was counted or sold again meanwhile, and a person must count it."""
    rows = session.exec(
        select(Reservation)
        .where(
            col(Reservation.order_id) == order_id,
            col(Reservation.shipment_id) == shipment_id,
            col(Reservation.status) == ReservationStatus.RELEASED,
        )
        .order_by(col(Reservation.node_id), col(Reservation.sku), col(Reservation.line_no))
    ).all()
    units = 0
    for row in rows:
        claimed = session.connection().execute(
            update(_RESERVATIONS)
            .where(
                col(Reservation.id) == row.id,
                col(Reservation.status) == ReservationStatus.RELEASED,
            )
            .values(status=ReservationStatus.FULFILLED, updated_at=utcnow())
        )
        if claimed.rowcount != 1:
            continue
        q = row.quantity
        taken = move_stock(
            session, row.node_id, row.sku, MovementKind.SHIPMENT, shipment_id,
            d_on_hand=-q, condition=ON_HAND - q >= 0,
        )  # fmt: skip
        if not taken:
            raise NegativeStock(node_id=row.node_id, sku=row.sku, delta=-q)
        units += q
    return units
