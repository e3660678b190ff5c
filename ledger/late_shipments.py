"""A shipment that shipped after the order had moved it away: its reservation was released
when it moved, but the parcel left the node all the same, so its units leave on hand now."""

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from ledger.positions import move_stock
from ledger.stock import units_leaving
from ledger.tables import MovementKind, Reservation, ReservationStatus, utcnow

_RESERVATIONS = Reservation.__table__  # type: ignore[attr-defined]


def ship_released(
    session: Session, order_id: str, shipment_id: str, shipped_at: datetime | None = None
) -> int:
    """Turn the shipment's released reservations into fulfilled ones and take their units off
    on hand, as `stock.fulfil` does for a reserved parcel: idempotent (a compare-and-set on each
    row's status), nothing taken for a parcel a later stock count already left out, and on hand
    stopping at zero (a shortfall shows as an oversold position for a person to count)."""
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
        leaving = units_leaving(session, row.node_id, row.sku, row.quantity, shipped_at)
        move_stock(
            session, row.node_id, row.sku, MovementKind.SHIPMENT, shipment_id,
            d_on_hand=-leaving,
        )  # fmt: skip
        units += leaving
    return units
